"""Replacing a small state file so that a reader never sees half of it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TextIO


def replace_atomically(path: Path, write: Callable[[TextIO], object], *, mode: int | None = None,
                       durable: bool = False) -> None:
    """Write through ``write(fh)`` into a temporary file beside ``path`` (``mode``: its
    permissions, set before anything is written; ``durable``: fsync before the rename), then
    rename it over ``path``. Raises OSError, leaving no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            write(fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
