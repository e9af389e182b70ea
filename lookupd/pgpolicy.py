"""The policy service on PostgreSQL (issue 11): its few indexed reads on one read-only
connection, its callout results written through a short-lived one.

The policy reads what changes all the time (queue readings, the verify cache, relay state),
so it keeps no snapshot: each decision asks the database (one round trip on the event loop —
loopback or a LAN; the policy service sees far fewer requests than the lookup maps). When the
database is unreachable a decision fails, and the policy service closes the connection
without a reply, which Postfix turns into its default action (a 4xx, never a rejection).
"""

from __future__ import annotations

from typing import Any

import psycopg

from mrod.answers import policy
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.infra.pgread import ReadConnection


class PgPolicyStores:
    """StoreHolder's surface for the policy service: ``get()`` a PolicyStore, ``close()`` it
    after a fault (the next request reconnects)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._store: policy.PolicyStore | None = None

    def get(self) -> policy.PolicyStore:
        if self._store is None:
            self._store = policy.PolicyStore(ReadConnection.open(self.target, timeout_s=2))  # type: ignore[arg-type]  # duck-typed sqlite3.Connection
        return self._store

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.conn.close()
            except psycopg.Error:
                pass

    def shutdown(self) -> None:
        self.close()


def record_on_postgresql(target: Target, entry: tuple[str, int, str, str], timeout_s: float) -> None:
    """policy.record_callout on PostgreSQL (from a worker thread; the same SQL, translated)."""
    extra: dict[str, Any] = {}
    password = target.password()
    if password:
        extra["password"] = password
    try:
        with psycopg.connect(target.url, autocommit=True, connect_timeout=max(2, int(timeout_s)),
                             application_name="mrod-policy", **extra) as raw:
            # ReadConnection only translates SQLite's placeholders; this one may write.
            policy.record_callout(ReadConnection(raw, target.describe()), entry)  # type: ignore[arg-type]  # duck-typed sqlite3.Connection
    except psycopg.OperationalError as exc:
        raise DatabaseNotReady(f"database {target.describe()} is unreachable: {' '.join(str(exc).split())}") from None
