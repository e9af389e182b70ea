"""lookupd's sync status on local disk: how stale is this node's routing
snapshot, read without the database — so it can still be told while PostgreSQL is down.

lookupd on PostgreSQL (lookupd/pgholder.py) writes ``lookupd-sync.json`` in the node's state
directory (beside the snapshot file) after each sync (every 2 s), when it loses the database,
while it is gone (every few seconds) and at shutdown. ``mrod health``, the panel and the node
status job (mrod.operations.nodereports) read it here.

The verdict: ``fresh``; ``stale`` when the last sync is more than ``STALE_AFTER`` seconds old,
or when the file itself is (lookupd not running, or hung) or says lookupd stopped; ``missing``
when there is no usable file (lookupd never ran here, or the file is not what lookupd writes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from mrod.infra.engine import Target
from mrod.infra.config import Config
from mrod.infra.files import replace_atomically

FILE = "lookupd-sync.json"
STALE_AFTER = 30.0     # seconds: a sync (or a write of the file) older than this is stale
MAX_BYTES = 64 * 1024  # the file is ~250 bytes; anything larger is not lookupd's

FRESH, STALE, MISSING = "fresh", "stale", "missing"


def path_for(cfg: Config) -> Path | None:
    """Where this node's lookupd writes its sync status; None for a database of this node's own
    (no snapshot to age: lookupd reads the database file itself)."""
    if not Target.of(cfg.database).shared:
        return None
    return cfg.state_dir / FILE


def read_for(cfg: Config) -> SyncStatus | None:
    """This node's lookupd sync status (None on SQLite)."""
    path = path_for(cfg)
    return None if path is None else read(path)


def write(path: Path, *, node: str, database: str, synced_at: float | None, connected: bool,
          domains: int | None, running: bool = True, now: float | None = None) -> None:
    """Replace the file atomically (a reader never sees half of it). Raises OSError."""
    data = {"node": node, "database": database, "synced_at": synced_at, "connected": connected,
            "domains": domains, "running": running, "pid": os.getpid(),
            "written_at": time.time() if now is None else now}
    replace_atomically(path, lambda fh: fh.write(json.dumps(data, separators=(",", ":"))))


@dataclasses.dataclass(frozen=True)
class SyncStatus:
    path: Path
    verdict: str
    now: float
    synced_at: float | None = None
    connected: bool = False
    running: bool = False
    written_at: float | None = None
    node: str = ""
    database: str = ""
    domains: int | None = None
    pid: int | None = None
    problem: str = ""          # why the file was not usable (verdict missing)

    @property
    def staleness(self) -> float | None:
        """Seconds since lookupd's last sync with the database (None: never, or no file)."""
        return None if self.synced_at is None else max(0.0, self.now - self.synced_at)

    @property
    def silence(self) -> float | None:
        """Seconds since lookupd last wrote the file."""
        return None if self.written_at is None else max(0.0, self.now - self.written_at)

    @property
    def alive(self) -> bool:
        """lookupd is running and wrote the file recently."""
        return self.running and self.silence is not None and self.silence <= STALE_AFTER

    def line(self) -> str:
        """One sentence for ``mrod health`` (after "lookupd: ")."""
        if self.verdict == MISSING:
            why = f" ({self.problem})" if self.problem else ""
            return f"no sync status in {self.path}{why} (is mrod serve running?)"
        last = f"last sync {when(self.synced_at)}"
        if not self.running:
            return f"stopped {seconds(self.silence)} ago ({last})"
        if not self.alive:
            return f"not running or hung: {self.path} not written for {seconds(self.silence)} ({last})"
        reach = "database reachable" if self.connected else "database unreachable"
        if self.synced_at is None:
            return f"no routing snapshot yet ({reach}) — answering TEMP"
        if self.verdict == STALE:
            return f"routing snapshot {seconds(self.staleness)} stale ({last}; {reach}) — answering from it"
        return f"routing snapshot synced {seconds(self.staleness)} ago ({reach})"

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "staleness": self.staleness, "connected": self.connected,
                "running": self.running, "written_at": self.written_at, "synced_at": self.synced_at,
                "node": self.node, "domains": self.domains, "path": str(self.path)}


def read(path: Path, now: float | None = None) -> SyncStatus:
    """The status in ``path``; never raises (a missing, unreadable or foreign file: MISSING)."""
    now = time.time() if now is None else now
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return SyncStatus(path, MISSING, now)
    except OSError as exc:
        return SyncStatus(path, MISSING, now, problem=f"unreadable: {exc.strerror}")
    try:
        if len(raw) > MAX_BYTES:
            raise ValueError("too large")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        status = SyncStatus(
            path, FRESH, now, synced_at=_number(data.get("synced_at"), optional=True),
            connected=_flag(data.get("connected")), running=_flag(data.get("running", True)),
            written_at=_number(data.get("written_at")), node=_text(data.get("node")),
            database=_text(data.get("database")), domains=_count(data.get("domains")),
            pid=_count(data.get("pid")))
    except (ValueError, UnicodeDecodeError) as exc:
        return SyncStatus(path, MISSING, now, problem=f"not a sync status: {exc}")
    return _judged(status)


def _judged(status: SyncStatus) -> SyncStatus:
    staleness = status.staleness
    stale = not status.alive or staleness is None or staleness > STALE_AFTER
    return dataclasses.replace(status, verdict=STALE) if stale else status


def _number(value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a time: {str(value)[:40]!r}")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"not true/false: {str(value)[:40]!r}")
    return value


def _text(value: Any) -> str:
    return value[:300] if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def seconds(value: float | None) -> str:
    """'1.2 s', '312 s', '4000 s (1h 6m)'."""
    if value is None:
        return "?"
    if value < 10:
        return f"{value:.1f} s"
    text = f"{value:.0f} s"
    if value >= 3600:
        hours, rest = divmod(int(value), 3600)
        text += f" ({hours}h {rest // 60}m)" if hours < 48 else f" ({hours // 24}d {hours % 24}h)"
    return text


def when(epoch: float | None) -> str:
    """'2026-12-02 10:11:12 UTC', or 'never'."""
    if epoch is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
