"""This node's state directory ([node] state_dir): made at start, and proven writable when the
data is on PostgreSQL — there lookupd keeps the routing snapshot it answers Postfix from while
the database is unreachable, so a directory it cannot write would turn the next outage into
TEMP for every domain. On SQLite lookupd reads the database file itself: nothing to check."""

from __future__ import annotations

import os
from pathlib import Path

from mrod.infra.config import Config
from mrod.infra.errors import MrodError

MODE = 0o750      # the node's user writes; its group (the panel's readers) may look


class StateDirUnusable(MrodError):
    """The state directory cannot be made or written; the message is the one line to show."""


def prepare(cfg: Config) -> Path | None:
    """Make the state directory (as the user this node runs as, so it owns it) and check that
    a file can be written in it. Returns it, or None on SQLite. Raises StateDirUnusable."""
    if not cfg.database.url:
        return None
    path = cfg.state_dir
    probe = path / f".mrod-write-check.{os.getpid()}"
    try:
        path.mkdir(mode=MODE, parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StateDirUnusable(
            f"node.state_dir {path}: cannot write there ({why}); on PostgreSQL lookupd keeps its"
            " routing snapshot there to answer Postfix while the database is unreachable") from None
    return path
