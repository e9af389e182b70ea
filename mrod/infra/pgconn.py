"""The PostgreSQL adapter of ``dbapi.Connection`` (psycopg 3), and the one function every
PostgreSQL connection of mrod is opened with (``connect_async`` / ``connect_sync``).

Repository code calls ``conn.execute(sql, params)`` (awaited, or as ``async with``),
``fetchone``/``fetchall``, ``rowcount``, ``executemany``, ``in_transaction`` and ``close``, with
SQLite's ``?`` and ``:name`` placeholders, and reads rows by index or column name. This module
gives a psycopg 3 connection exactly that surface, so one repository module serves both
engines; the SQL itself is written to run on both (see docs/cluster.md). Keeping one SQL text
with SQLite's placeholders, translated here (the one adapter that needs it; the translation
is tested in tests/core/test_engine.py), costs less than a second spelling of every statement.

What is translated, and why:
- placeholders ``?`` → ``%s`` and ``:name`` → ``%(name)s``, outside string literals, quoted
  identifiers and comments; every ``%`` → ``%%``;
- ``BEGIN IMMEDIATE`` (SQLite: take the write lock now) → ``BEGIN`` plus a transaction-scoped
  advisory lock, so writers are serialised as they are on SQLite and every check-then-write
  in the repository code (the last admin, a quota) keeps its meaning across nodes;
- Python bools are sent as 0/1 (the schema keeps SQLite's integer flags);
- a NUL in a string parameter is sent as U+FFFD: PostgreSQL's text cannot hold NUL, and every
  stored name is validated without control characters, so a NUL only arrives in a probe (a
  sign-in name, a search) or a log-like record, where the replacement keeps its meaning;
- ``numeric`` results (sum, avg) come back as int or float, not Decimal;
- integrity errors are raised as mrod's UniqueViolation / ForeignKeyViolation /
  IntegrityViolation, as the SQLite adapter raises them;
- a lost connection is a ``DatabaseUnreachable``, a refused one a ``DatabaseNotReady``, with a
  one-line reason.

Every connection (the panel's, the CLI's, a job's, lookupd's) is opened with
``Target.connect_options``: a connect timeout, and TCP keepalives plus ``tcp_user_timeout`` so
that a session whose server vanished (a partition sends no reset) fails within seconds
instead of waiting for the kernel's retransmission limit (about 15 minutes); and every
statement of a ``Connection`` is bounded by ``[database] answer_timeout``, which a hung server
(which still acknowledges packets) would otherwise outlast.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from functools import lru_cache
from functools import partial
from typing import Any, Coroutine, Iterable, Sequence, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus
from psycopg.types.string import StrDumperUnknown

from mrod.infra.dbapi import Params, Pending
from mrod.infra.engine import WRITE_LOCK_KEY, Target
from mrod.infra.errors import DatabaseNotReady, DatabaseUnreachable, ForeignKeyViolation, IntegrityViolation, \
    UniqueViolation

T = TypeVar("T")

_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::|\?|:[A-Za-z_]\w*|%""")
_BEGIN_IMMEDIATE = re.compile(r"\s*BEGIN\s+IMMEDIATE\s*;?\s*$", re.IGNORECASE)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite placeholders to psycopg's, leaving literals, identifiers and comments alone."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if token.startswith(":") and token != "::":
            return f"%({token[1:]})s"
        # psycopg reads % everywhere in a query with parameters, literals and comments too
        return token.replace("%", "%%")

    return _TOKEN.sub(one, sql)


class Row(tuple[Any, ...]):
    """A result row read like sqlite3.Row: by position, by column name, ``keys()``."""

    _names: tuple[str, ...]

    def __new__(cls, names: tuple[str, ...], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names.index(key))
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    return lambda values: Row(names, values)


class _IntFromBool(Dumper):
    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _StrWithoutNul(StrDumperUnknown):
    def dump(self, obj: str) -> bytes:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)  # type: ignore[return-value]  # psycopg stubs type dump loosely


class _NumberFromNumeric(Loader):
    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


def _integrity(exc: psycopg.IntegrityError) -> IntegrityViolation:
    """mrod's error for a constraint PostgreSQL reports (worded as the SQLite adapter's)."""
    diag = exc.diag
    where = diag.constraint_name or f"{diag.table_name}.{diag.column_name}"
    if isinstance(exc, pgerrors.UniqueViolation):
        return UniqueViolation(f"UNIQUE constraint failed: {where}", where)
    if isinstance(exc, pgerrors.ForeignKeyViolation):
        return ForeignKeyViolation("FOREIGN KEY constraint failed", where)
    if isinstance(exc, pgerrors.NotNullViolation):
        return IntegrityViolation(f"NOT NULL constraint failed: {diag.table_name}.{diag.column_name}", where)
    if isinstance(exc, pgerrors.CheckViolation):
        return IntegrityViolation(f"CHECK constraint failed: {where}", where)
    return IntegrityViolation(str(exc).splitlines()[0], where)


class Cursor:
    """The result of one statement (rows fetched lazily from psycopg's cursor)."""

    def __init__(self, cursor: psycopg.AsyncCursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    async def fetchone(self) -> Row | None:
        if self._cursor.description is None:
            return None
        return await self._cursor.fetchone()

    async def fetchall(self) -> list[Row]:
        if self._cursor.description is None:
            return []
        return await self._cursor.fetchall()

    async def fetchmany(self, size: int) -> list[Row]:
        if self._cursor.description is None:
            return []
        return await self._cursor.fetchmany(size)

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> Row:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def close(self) -> None:
        await self._cursor.close()


class Connection:
    """One PostgreSQL session in autocommit mode; transactions are explicit BEGIN/COMMIT, as
    mrod's SQLite connections (isolation_level=None) have them."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], where: str, answer_timeout: float = 30.0) -> None:
        self._conn = conn
        self.where = where          # the URL without its password, for messages
        self.answer_timeout = answer_timeout

    @classmethod
    async def open(cls, target: Target, application: str = "mrod") -> Connection:
        """A session whose connection attempt and every statement are bounded by the target's
        ``answer_timeout``."""
        conn = await connect_async(target, application, target.answer_timeout)
        conn.adapters.register_dumper(bool, _IntFromBool)
        conn.adapters.register_dumper(str, _StrWithoutNul)
        conn.adapters.register_loader("numeric", _NumberFromNumeric)
        return cls(conn, target.describe(), target.answer_timeout)

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status in (
            TransactionStatus.INTRANS, TransactionStatus.INERROR, TransactionStatus.ACTIVE)

    @property
    def closed(self) -> bool:
        """The session is gone (server restarted, connection cut): open a new one."""
        return self._conn.closed

    @property
    def raw(self) -> psycopg.AsyncConnection[Any]:
        """The psycopg connection, for engine-specific work (migrations, COPY)."""
        return self._conn

    def execute(self, sql: str, params: Params | None = None, /) -> Pending[Cursor]:
        return Pending(partial(self._run, sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params], /) -> None:
        try:
            async with self._conn.cursor() as cur:
                await self._answered(cur.executemany(translate(sql), list(rows)))
        except psycopg.Error as exc:
            raise self._fault(exc) from None

    async def _run(self, sql: str, params: Any) -> Cursor:
        if _BEGIN_IMMEDIATE.match(sql):
            await self._run("BEGIN", None)
            return await self._run(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})", None)
        cur = self._conn.cursor()
        try:
            # Always with parameters (maybe none): psycopg then turns the escaped %% back into %.
            await self._answered(cur.execute(translate(sql), params if params is not None else ()))
        except psycopg.Error as exc:
            await cur.close()
            raise self._fault(exc) from None
        except DatabaseUnreachable:
            await cur.close()
            raise
        return Cursor(cur)

    async def _answered(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result if the server answers within ``answer_timeout``; else the session
        is closed (the pool opens a new one) and DatabaseUnreachable raised. Not a plain
        cancellation: psycopg would then ask the hung server to cancel, waiting seconds more."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.answer_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        await self._conn.close()
        task.cancel()               # fails at once on the closed session, asking nothing
        task.add_done_callback(_retrieved)
        raise DatabaseUnreachable(f"database {self.where} did not answer within {self.answer_timeout:g}s")

    def _fault(self, exc: psycopg.Error) -> Exception:
        if isinstance(exc, psycopg.IntegrityError):
            return _integrity(exc)
        if isinstance(exc, psycopg.OperationalError) and self._conn.closed:
            return DatabaseUnreachable(f"database {self.where} is unreachable: {reason(exc)}")
        return exc

    async def close(self) -> None:
        await self._conn.close()


async def connect_async(target: Target, application: str, timeout_s: float) -> psycopg.AsyncConnection[Any]:
    """An autocommit async session to ``target`` (rows read like sqlite3.Row): the async half of
    the one PostgreSQL connect path, with ``Target.connect_options``."""
    try:
        return await psycopg.AsyncConnection.connect(
            target.url, autocommit=True, row_factory=_row_factory,
            **target.connect_options(application, timeout_s))  # type: ignore[arg-type]  # psycopg's connect takes libpq options as keywords
    except psycopg.Error as exc:
        raise connect_failure(target.describe(), exc) from None


def connect_sync(target: Target, application: str, timeout_s: float) -> psycopg.Connection[Any]:
    """An autocommit synchronous session to ``target`` (plain tuples): the other half of the one
    connect path, for lookupd's follower and policy and the synchronous readers."""
    try:
        return psycopg.connect(target.url, autocommit=True,
                               **target.connect_options(application, timeout_s))  # type: ignore[arg-type]  # psycopg's connect takes libpq options as keywords
    except psycopg.Error as exc:
        raise connect_failure(target.describe(), exc) from None


def _retrieved(task: asyncio.Future[Any]) -> None:
    """The abandoned statement's outcome, consumed (it failed with the closed session)."""
    if not task.cancelled():
        task.exception()


def unreachable(exc: psycopg.Error) -> bool:
    """Whether a failed connection is the server's absence rather than its refusal: no answer
    from a server (refused, timed out, a name not resolved: libpq's own words, no SQLSTATE), a
    connection exception (08), or a server going down or starting up (57P01-57P03). A server
    that answers with a FATAL refusal — a wrong password, a database that does not exist — is
    a configuration to fix, not an outage. (psycopg gives no SQLSTATE for errors while
    connecting, so the server's FATAL is recognised in the message.)"""
    state = exc.sqlstate
    if state is not None:
        return state.startswith("08") or state in ("57P01", "57P02", "57P03")
    text = str(exc)
    return "FATAL:" not in text or any(phrase in text for phrase in _GOING_OR_COMING)


# The server's words for 57P01-57P03 while connecting (it is going down or not up yet).
_GOING_OR_COMING = ("the database system is starting up", "the database system is shutting down",
                    "the database system is in recovery mode", "the database system is not yet accepting",
                    "terminating connection due to administrator command")


def connect_failure(where: str, exc: psycopg.Error) -> DatabaseNotReady:
    """The error for a connection to ``where`` that failed: DatabaseUnreachable for an
    absent server (``unreachable``), else DatabaseNotReady (a refusal: fix the config)."""
    kind = DatabaseUnreachable if unreachable(exc) else DatabaseNotReady
    return kind(f"database {where} cannot be used: {reason(exc)}")


def reason(exc: BaseException) -> str:
    """libpq's message on one line (it never contains the password)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
