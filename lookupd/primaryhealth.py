"""This node's primary health states, in lookupd's memory (issue 20.1, 23.3).

The health monitor (`mrod serve`) writes relay_health on every probe; those writes are not
journaled (one a minute per relay and node, none of them a routing change), so lookupd reads
this node's rows itself, every ``REFRESH`` seconds, in a thread of its own: the policy's
decisions never wait for it. A read that fails forgets every state — unknown, so the policy
accepts: mrod never refuses mail because it does not know. A state is also stale when its
last probe is old (mrod.answers.primaryup.state), which covers a monitor that stopped.
"""

from __future__ import annotations

import logging
import threading
import time

from mrod.answers import primaryup
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.infra.dbapi import SyncConnection

log = logging.getLogger("mrod.policy")

REFRESH = 1.0     # seconds between two reads (a probe every [health] interval: 60 s by default)
OUTDATED = 5      # states not read again for this many refreshes (a hung database): unknown

_SQL = ("SELECT r.name, h.state, h.last_probe_at FROM relay_health h JOIN relay r ON r.id = h.relay_id"
        " WHERE h.node = ?")


class PrimaryHealth:
    """policy.Primaries from memory: ``health(relay name)``, and ``interval`` for staleness."""

    def __init__(self, target: Target, node: str, interval: float, refresh: float = REFRESH) -> None:
        self.target = target
        self.node = node
        self.interval = interval
        self.refresh = refresh
        self.states: dict[str, primaryup.Health] = {}
        self.reads = 0               # successful reads (tests wait for one)
        self.read_at = 0.0           # monotonic time of the last one
        self._conn: SyncConnection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def health(self, relay_name: str) -> primaryup.Health | None:
        if time.monotonic() - self.read_at > OUTDATED * max(self.refresh, 1.0):
            return None     # the reads stopped (a read hung on the database): not known now
        return self.states.get(relay_name)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mrod-primary-health", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.refresh + 3)
        self._close()

    def read_now(self) -> None:
        """One read (the thread's; tests call it to skip the wait)."""
        try:
            if self._conn is None:
                self._conn = db.open_sync(self.target, 2.0, "mrod-policy-health")
            rows = self._conn.execute(_SQL, (self.node,)).fetchall()
        except Exception as exc:  # noqa: BLE001 - whatever failed, the states are not known now
            self._close()
            self.states = {}
            if not self._failing:
                self._failing = True
                log.warning("policy: cannot read this node's primary health (%s); accepting as if unknown", exc)
            return
        # One assignment: a decision on the event loop sees the old dict or the new, never half.
        self.states = {name: (state, db.parse_stamp(at).timestamp() if at else None) for name, state, at in rows}
        self.reads += 1
        self.read_at = time.monotonic()
        if self._failing:
            self._failing = False
            log.info("policy: primary health readable again")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read_now()
            self._stop.wait(self.refresh)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
