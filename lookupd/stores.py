"""What lookupd's two services read, chosen once by the engine (the only module of lookupd that
asks which one the config names).

- ``RouteStores``: the routing answers' source, per lookup on the event loop. On SQLite the
  database file itself (and the in-memory snapshot that follows its journal: storeholder.py);
  on PostgreSQL the snapshot a sync thread keeps following the shared database (pgholder.py).
- ``PolicyStores``: the policy decisions' source. On SQLite a read-only file connection,
  decided on the event loop (microseconds); on PostgreSQL a session a decision may hang on, so
  decisions run off the loop (``off_loop``) under the deadline (pgpolicy.py).

Both are declared as Protocols: the services are written against them, not against an engine.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator, Protocol, cast

from mrod.answers import policy, routing
from mrod.answers.routestore import RouteStore
from mrod.answers.snapshot import RouteSnapshot
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.lookupd.storeholder import StoreHolder


class RouteStores(Protocol):
    @property
    def snapshot(self) -> RouteSnapshot | None:
        """The in-memory snapshot lookups are answered from, if there is one now."""
        ...

    def get(self) -> routing.Store:
        """The store for one lookup (raises DatabaseNotReady, or sqlite3's busy error: wait)."""
        ...

    def waiting(self, deadline: float) -> AbstractContextManager[routing.Store]:
        """A store that may wait up to ``deadline`` seconds for a busy database (off the loop)."""
        ...

    async def settle(self, timeout: float) -> None:
        """Wait (bounded) until the first lookups can be answered."""
        ...

    def staleness(self) -> float | None:
        """Seconds since the answers last synced with the database; None: always current."""
        ...

    @property
    def live(self) -> bool:
        """Whether the answers follow the database now (a shared one may be gone)."""
        ...

    def close(self) -> None: ...

    def shutdown(self) -> None: ...


class PolicyStores(Protocol):
    off_loop: bool     # decisions may hang on the database: run them in worker threads

    def get(self) -> policy.PolicyStore:
        """A store for one decision (DatabaseUnreachable: decide without the database)."""
        ...

    def done(self, store: policy.PolicyStore, broken: bool = False) -> None:
        """A decision is through with ``store`` (``broken``: it failed; drop the connection)."""
        ...

    def abandon(self, why: str) -> None:
        """A decision hung past its deadline: give up on the connection it holds."""
        ...

    def record(self, entry: tuple[str, int, str, str], timeout_s: float) -> None:
        """Store a callout result (from a worker thread)."""
        ...

    def close(self) -> None: ...

    def shutdown(self) -> None: ...


def route_stores(target: Target, snapshot_file: Path | None, status_file: Path | None,
                 node: str) -> RouteStores:
    """The routing source for ``target``'s engine."""
    if target.url:
        from mrod.lookupd.pgholder import PgStoreHolder     # psycopg only for PostgreSQL

        return PgStoreHolder(target, snapshot_file, status_file, node)
    assert target.path is not None
    return SqliteRouteStores(target.path)


def policy_stores(target: Target) -> PolicyStores:
    """The policy's source for ``target``'s engine."""
    if target.url:
        from mrod.lookupd.pgpolicy import PgPolicyStores

        return PgPolicyStores(target)
    assert target.path is not None
    return SqlitePolicyStores(target.path)


class SqliteRouteStores(StoreHolder[RouteStore]):
    """The SQLite file, with the snapshot that follows its change journal."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, RouteStore, snapshot=True)

    @contextmanager
    def waiting(self, deadline: float) -> Iterator[routing.Store]:
        store = RouteStore.open(self.db_path, busy_timeout_ms=int(deadline * 1000))
        try:
            yield store
        finally:
            store.close()

    async def settle(self, timeout: float) -> None:
        """Nothing to wait for: the file is read at the first lookup."""

    def staleness(self) -> float | None:
        return None

    @property
    def live(self) -> bool:
        return True


class SqlitePolicyStores:
    """A read-only connection to the SQLite file, reopened after a fault."""

    off_loop = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._holder = StoreHolder(path, policy.PolicyStore)

    def get(self) -> policy.PolicyStore:
        # No snapshot for the policy (StoreHolder without snapshot=True): always a PolicyStore.
        return cast(policy.PolicyStore, self._holder.get())

    def done(self, store: policy.PolicyStore, broken: bool = False) -> None:
        if broken:
            self._holder.close()

    def abandon(self, why: str) -> None:
        self._holder.close()

    def record(self, entry: tuple[str, int, str, str], timeout_s: float) -> None:
        conn = db.open_sync_writer(self.path, timeout_s)
        try:
            policy.record_callout(conn, entry)
        finally:
            conn.close()

    def close(self) -> None:
        self._holder.close()

    def shutdown(self) -> None:
        self._holder.shutdown()
