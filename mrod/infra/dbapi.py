"""The connection interfaces mrod's code is written against, whichever engine runs underneath.

Like aiosql's driver adapters, each engine's adapter is declared against a ``typing.Protocol``
here, so code written against the protocol runs on either engine and mypy proves both
adapters fit:

- ``Connection``: the async connection the repositories (``mrod.entities``, the importers,
  the panel) use. Implemented by ``sqliteconn.SqliteConnection`` (aiosqlite) and
  ``pgconn.Connection`` (psycopg). ``db.connect`` chooses which.
- ``SyncConnection``: the synchronous connection of the routing/policy read side (lookupd, the
  CLI's ``mrod lookup``, the metrics reader) — reads, and the policy's callout cache writes.
  Implemented by the stdlib's ``sqlite3.Connection`` as it is and by ``pgread.PgSyncConnection``.
  ``db.open_sync`` chooses which.

SQL is written once, with SQLite's ``?`` / ``:name`` placeholders; the PostgreSQL adapters
translate them (pgconn.translate). Both async adapters raise mrod's own errors: UniqueViolation,
ForeignKeyViolation (IntegrityViolation for the other constraints), DatabaseUnreachable for a
database that does not answer now, DatabaseNotReady for one that cannot be used.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Generic, Iterable, Iterator, Mapping, \
    Protocol, Sequence, TypeVar

# A statement's parameters: positional for ``?``, a mapping for ``:name``.
Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row, read by position or by column name (sqlite3.Row, pgconn.Row)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """The result of one statement."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def close(self) -> None: ...


C = TypeVar("C", bound=Cursor, covariant=True)


class Executing(Protocol[C]):
    """``conn.execute(...)``: awaited it is the cursor; ``async with`` it closes the cursor."""

    def __await__(self) -> Generator[Any, None, C]: ...

    async def __aenter__(self) -> C: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Connection(Protocol):
    """One async session. Transactions are explicit: ``db.transaction`` (BEGIN IMMEDIATE takes
    the write lock on both engines)."""

    def execute(self, sql: str, params: Params | None = None, /) -> Executing[Cursor]: ...

    async def executemany(self, sql: str, rows: Iterable[Params], /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    @property
    def closed(self) -> bool:
        """The session is gone (a server that dropped it): open a new one."""
        ...

    async def close(self) -> None: ...


class SyncCursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SyncConnection(Protocol):
    """A synchronous session (autocommit: every statement sees the latest commit)."""

    def execute(self, sql: str, params: Any = (), /) -> SyncCursor: ...

    def close(self) -> None: ...


K = TypeVar("K", bound=Cursor)


class Pending(Generic[K]):
    """An ``Executing`` for adapters: ``run`` executes the statement when awaited or entered."""

    __slots__ = ("_run", "_cursor")

    def __init__(self, run: Callable[[], Awaitable[K]]) -> None:
        self._run = run
        self._cursor: K | None = None

    def __await__(self) -> Generator[Any, None, K]:
        return self._run().__await__()

    async def __aenter__(self) -> K:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()
