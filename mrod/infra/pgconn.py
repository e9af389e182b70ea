"""PostgreSQL behind the connection API the repository modules already use (aiosqlite's).

Repository code calls ``conn.execute(sql, params)`` (awaited, or as ``async with``),
``fetchone``/``fetchall``, ``rowcount``, ``executemany``, ``in_transaction`` and ``close``, with
SQLite's ``?`` and ``:name`` placeholders, and reads rows by index or column name. This module
gives a psycopg 3 connection exactly that surface, so one repository module serves both
engines; the SQL itself is written to run on both (see docs/cluster.md).

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
- integrity errors are raised as ``IntegrityError``, a subclass of ``sqlite3.IntegrityError``
  whose message has SQLite's wording ("UNIQUE constraint failed"), which is what repository
  code catches and inspects;
- a lost or refused connection is a ``DatabaseNotReady`` with a one-line reason.
"""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generator, Iterable, Mapping, Sequence

import psycopg
from psycopg import errors as pgerrors
from psycopg.adapt import Dumper, Loader
from psycopg.pq import TransactionStatus
from psycopg.types.string import StrDumperUnknown

from mrod.infra.engine import WRITE_LOCK_KEY
from mrod.infra.errors import DatabaseNotReady, DatabaseUnreachable

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


class IntegrityError(sqlite3.IntegrityError):
    """A PostgreSQL constraint violation, worded as SQLite words it."""


def _integrity(exc: psycopg.IntegrityError) -> IntegrityError:
    diag = exc.diag
    where = diag.constraint_name or f"{diag.table_name}.{diag.column_name}"
    if isinstance(exc, pgerrors.UniqueViolation):
        return IntegrityError(f"UNIQUE constraint failed: {where}")
    if isinstance(exc, pgerrors.ForeignKeyViolation):
        return IntegrityError("FOREIGN KEY constraint failed")
    if isinstance(exc, pgerrors.NotNullViolation):
        return IntegrityError(f"NOT NULL constraint failed: {diag.table_name}.{diag.column_name}")
    if isinstance(exc, pgerrors.CheckViolation):
        return IntegrityError(f"CHECK constraint failed: {where}")
    return IntegrityError(str(exc).splitlines()[0])


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


class _Pending:
    """``conn.execute(...)``: awaitable (→ Cursor) and an async context manager, as in aiosqlite."""

    def __init__(self, conn: Connection, sql: str, params: Any) -> None:
        self._conn, self._sql, self._params = conn, sql, params
        self._cursor: Cursor | None = None

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._conn._run(self._sql, self._params).__await__()

    async def __aenter__(self) -> Cursor:
        self._cursor = await self._conn._run(self._sql, self._params)
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class Connection:
    """One PostgreSQL session in autocommit mode; transactions are explicit BEGIN/COMMIT, as
    mrod's SQLite connections (isolation_level=None) have them."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], where: str) -> None:
        self._conn = conn
        self.where = where          # the URL without its password, for messages
        self.engine = "postgresql"

    @classmethod
    async def open(cls, conninfo: str, where: str, password: str | None = None) -> Connection:
        extra: dict[str, Any] = {"password": password} if password else {}
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, row_factory=_row_factory, connect_timeout=10,
                application_name="mrod", **extra)
        except psycopg.Error as exc:
            raise connect_failure(where, exc) from None
        conn.adapters.register_dumper(bool, _IntFromBool)
        conn.adapters.register_dumper(str, _StrWithoutNul)
        conn.adapters.register_loader("numeric", _NumberFromNumeric)
        return cls(conn, where)

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

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> _Pending:
        return _Pending(self, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        try:
            async with self._conn.cursor() as cur:
                await cur.executemany(translate(sql), list(rows))
        except psycopg.Error as exc:
            raise self._fault(exc) from None

    async def _run(self, sql: str, params: Any) -> Cursor:
        if _BEGIN_IMMEDIATE.match(sql):
            await self._run("BEGIN", None)
            return await self._run(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})", None)
        cur = self._conn.cursor()
        try:
            # Always with parameters (maybe none): psycopg then turns the escaped %% back into %.
            await cur.execute(translate(sql), params if params is not None else ())
        except psycopg.Error as exc:
            await cur.close()
            raise self._fault(exc) from None
        return Cursor(cur)

    def _fault(self, exc: psycopg.Error) -> Exception:
        if isinstance(exc, psycopg.IntegrityError):
            return _integrity(exc)
        if isinstance(exc, psycopg.OperationalError) and self._conn.closed:
            return DatabaseUnreachable(f"database {self.where} is unreachable: {reason(exc)}")
        return exc

    async def commit(self) -> None:
        if self.in_transaction:
            await self._run("COMMIT", None)

    async def close(self) -> None:
        await self._conn.close()


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
