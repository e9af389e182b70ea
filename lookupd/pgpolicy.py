"""The policy service on PostgreSQL: its few indexed reads on one read-only
connection, its callout results written through a short-lived one.

The policy reads what changes all the time (queue readings, the verify cache, relay state),
so it keeps no snapshot: each decision asks the database (one round trip on the event loop —
loopback or a LAN; the policy service sees far fewer requests than the lookup maps). When the
database is unreachable ``get()`` raises DatabaseNotReady, and the policy service answers as
``[policy] when_database_unreachable`` says (policyservice.py). After a failed connection it
does not try again for ``RETRY`` seconds, so during an outage (or a partition, where every
attempt would wait for the connect timeout) each decision is answered at once.
"""

from __future__ import annotations

import threading
import time

import psycopg

from mrod.answers import policy
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady, DatabaseUnreachable
from mrod.infra.pgread import PgSyncConnection


RETRY = 1.0   # seconds after a failed connection before the next attempt


class PgPolicyStores:
    """stores.PolicyStores on PostgreSQL: ``get()`` a PolicyStore, ``close()`` it after a fault
    (the next request reconnects, at most once per ``RETRY`` seconds). Any failure to get one
    is a DatabaseUnreachable: the policy then decides without the database.

    Called from the policy service's worker threads (a decision is a round trip that may hang:
    never on the event loop). psycopg serialises the threads' queries on the one connection;
    one thread connects at a time, the others answer "unreachable" meanwhile. ``abandon()``
    drops a connection a decision hung on (the thread still in it finishes or fails alone)."""

    off_loop = True

    def __init__(self, target: Target) -> None:
        self.target = target
        self._store: policy.PolicyStore | None = None
        self._failed: tuple[float, str] | None = None    # (monotonic time, why) of the last failed attempt
        self._lock = threading.Lock()

    def get(self) -> policy.PolicyStore:
        store = self._store
        if store is not None:
            return store
        if not self._lock.acquire(blocking=False):
            raise DatabaseUnreachable(f"database {self.target.describe()}: connecting")
        try:
            if self._store is not None:
                return self._store
            if self._failed is not None and time.monotonic() - self._failed[0] < RETRY:
                raise DatabaseUnreachable(self._failed[1])
            try:
                conn = PgSyncConnection.open(self.target, timeout_s=2, application="mrod-policy")
            except DatabaseNotReady as exc:    # a refusal too: the policy cannot read the database now
                self._failed = (time.monotonic(), str(exc))
                raise DatabaseUnreachable(str(exc)) from None
            self._failed = None
            self._store = policy.PolicyStore(conn)
            return self._store
        finally:
            self._lock.release()

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.conn.close()
            except psycopg.Error:
                pass

    def abandon(self, why: str) -> None:
        """A decision waited too long: forget the connection without touching it (a thread is
        still blocked in it: ``done`` closes it there) and answer "unreachable" for ``RETRY``
        seconds."""
        self._store = None
        self._failed = (time.monotonic(), why)

    def done(self, store: policy.PolicyStore, broken: bool = False) -> None:
        """A worker thread is through with ``store``: close it if it was abandoned meanwhile,
        or if it failed (the next decision connects again)."""
        if broken and store is self._store:
            self._store = None
        if store is not self._store:
            try:
                store.conn.close()
            except psycopg.Error:
                pass

    def shutdown(self) -> None:
        self.close()

    def record(self, entry: tuple[str, int, str, str], timeout_s: float) -> None:
        """policy.record_callout on a short-lived session of its own (a worker thread's)."""
        record_on_postgresql(self.target, entry, timeout_s)


def record_on_postgresql(target: Target, entry: tuple[str, int, str, str], timeout_s: float) -> None:
    """policy.record_callout on PostgreSQL (from a worker thread; the same SQL, translated)."""
    conn = PgSyncConnection.open(target, timeout_s, "mrod-policy", read_only=False)
    try:
        policy.record_callout(conn, entry)
    finally:
        conn.close()
