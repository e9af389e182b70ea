"""lookupd's writer of the sync status file (its format: mrod.operations.syncstatus), used by the
PostgreSQL sync thread after each sync, when the database is lost and while it is gone, and
at shutdown — cheaply (a few hundred bytes, no fsync: a reader needs it current, not durable)
and never at the cost of the sync: a failed write is logged once, not raised."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from mrod.operations import syncstatus

log = logging.getLogger("mrod.lookupd")

EVERY = 1.0          # seconds: at most one write per this (a burst of notifications), unless
                     # connected or running changed
COMPLAIN_EVERY = 600.0   # seconds: a write failing all along is logged again after this


class SyncReporter:
    def __init__(self, path: Path, node: str, database: str) -> None:
        self.path = path
        self.node = node
        self.database = database
        self._lock = threading.Lock()
        self._last: tuple[float | None, bool, bool] | None = None
        self._written = 0.0      # monotonic time of the last write (success or not)
        self._failing = False
        self._complained = 0.0   # monotonic time of the last warning (0: none since the last success)

    def report(self, synced_at: float | None, connected: bool, domains: int | None, *,
               running: bool = True) -> None:
        """Write the status, unless the same was written less than ``EVERY`` seconds ago."""
        state = (synced_at, connected, running)
        with self._lock:
            now = time.monotonic()
            if self._last is not None and state[1:] == self._last[1:] and now - self._written < EVERY:
                return
            self._last, self._written = state, now
            try:
                syncstatus.write(self.path, node=self.node, database=self.database, synced_at=synced_at,
                                 connected=connected, domains=domains, running=running)
            except OSError as exc:
                self._failed(now, exc)
                return
            if self._failing:
                log.info("lookupd sync status written to %s again", self.path)
                self._failing, self._complained = False, 0.0

    def _failed(self, now: float, exc: OSError) -> None:
        self._failing = True
        if self._complained and now - self._complained < COMPLAIN_EVERY:
            return
        self._complained = now
        log.warning("could not write lookupd's sync status to %s: %s (mrod health and the panel cannot tell"
                    " this node's staleness; lookups are not affected)", self.path, exc.strerror or exc)
