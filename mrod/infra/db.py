"""Database access, the engine chosen here once: async connections for writers (CLI, panel,
importer, jobs), synchronous ones for the routing and policy read side, versioned migrations,
transactions.

``connect``/``opened``/``open_sync`` take a ``[database]`` config (or a path, a URL, a Target):
with ``url`` set they open PostgreSQL (mrod.infra.pgconn / pgread), else the SQLite file
(mrod.infra.sqliteconn / the stdlib). Either way the caller gets a connection of the
interfaces declared in mrod.infra.dbapi, so the repository modules run unchanged on either
engine and never ask which one it is.

WAL mode lets lookupd read while a writer commits; every writer takes the write lock at the
start of its transaction (BEGIN IMMEDIATE) so two writers never deadlock on an upgrade.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, cast

import aiosqlite

from mrod.infra import pgschema
from mrod.infra.dbapi import Connection, Cursor, Row, SyncConnection
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.infra.sqliteconn import SqliteConnection, is_busy as is_busy

if TYPE_CHECKING:
    from mrod.infra.config import DatabaseConfig
    from mrod.infra.pgconn import Connection as PgConnection

    # What connect/opened accept: a [database] config, a Target, an SQLite path or a URL.
    Where = Path | str | Target | DatabaseConfig

WRITER_BUSY_TIMEOUT_MS = 5000


ENGINES = ("sqlite", "postgresql")


def migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration of ``engine``, in order: the shared
    ``NNNN_name.sql`` files and this engine's half of the ``NNNN_name.<engine>.sql`` pairs."""
    found = []
    for entry in resources.files("mrod.migrations").iterdir():
        name = entry.name
        if not (name.endswith(".sql") and name[:4].isdigit()):
            continue
        variant = name[:-4].rpartition(".")[2] if name[:-4].count(".") else ""
        if variant and variant not in ENGINES:
            raise RuntimeError(f"migration {name}: unknown engine {variant!r}")
        if variant in ("", engine):
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise RuntimeError(f"migration files must be numbered uniquely from 0001: {versions}")
    return found


SCHEMA_VERSION = max((v for v, _, _ in migrations()), default=0)


# Timestamps are stored as ISO 8601 UTC text, to the second: they sort as text.
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: datetime) -> str:
    """A stored timestamp of an aware UTC datetime."""
    return moment.strftime(STAMP)


def parse_stamp(text: str) -> datetime:
    """The aware UTC datetime of a stored timestamp."""
    return datetime.strptime(text, STAMP).replace(tzinfo=timezone.utc)


def now() -> str:
    return stamp(datetime.now(timezone.utc))


def _as_postgresql(conn: Connection) -> PgConnection | None:
    """The PostgreSQL adapter behind ``conn``, or None on SQLite (psycopg is not imported)."""
    return None if isinstance(conn, SqliteConnection) else cast("PgConnection", conn)


def driver_errors() -> tuple[type[Exception], ...]:
    """The exceptions a driver raises for a database it cannot use (psycopg's only if loaded):
    what a reader that reports rather than fails (a metrics scrape) catches."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.DatabaseError, psycopg.Error) if psycopg is not None else (sqlite3.DatabaseError,)


async def connect(where: Where, *, create: bool = False) -> Connection:
    """Open the database for writing: an SqliteConnection or a pgconn.Connection. Raises
    DatabaseNotReady when it is missing or unreadable (DatabaseUnreachable: a server that does
    not answer now)."""
    target = Target.of(where)
    if target.url:
        from mrod.infra import pgconn     # psycopg (and libpq) only for a PostgreSQL URL

        return await pgconn.Connection.open(target)
    assert target.path is not None
    path = target.path
    if not path.exists():
        if not create:
            raise DatabaseNotReady(f"database {path} does not exist; run 'mrod init' first")
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise DatabaseNotReady(f"database {path} cannot be used: {exc}") from None
    return SqliteConnection(conn, str(path))


def open_sync(where: Where, timeout_s: float = 5.0, application: str = "mrod") -> SyncConnection:
    """A synchronous reading session (autocommit: each query sees the latest commit): the
    stdlib's read-only sqlite3 connection, waiting up to ``timeout_s`` for a writer's lock, or
    a read-only pgread session. Raises DatabaseNotReady (DatabaseUnreachable: not now)."""
    target = Target.of(where)
    if target.url:
        from mrod.infra.pgread import PgSyncConnection     # psycopg only for a PostgreSQL URL

        return PgSyncConnection.open(target, timeout_s or 5.0, application)
    assert target.path is not None
    return open_readonly(target.path, int(timeout_s * 1000))


def open_sync_writer(where: Where, timeout_s: float, application: str = "mrod") -> SyncConnection:
    """A synchronous session that may write (the policy's callout cache), waiting up to
    ``timeout_s`` for the write lock or the server."""
    target = Target.of(where)
    if target.url:
        from mrod.infra.pgread import PgSyncConnection

        return PgSyncConnection.open(target, timeout_s, application, read_only=False)
    assert target.path is not None
    conn = sqlite3.connect(target.path, isolation_level=None, timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode")  # fails fast on a file that is not a database
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def where_equal(*pairs: tuple[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """``' WHERE a = ? AND b = ?'`` for the (column, value) pairs whose value is not None, and
    its arguments; ``('', ())`` when every value is None (the optional filters of a listing)."""
    given = [(column, value) for column, value in pairs if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in given), tuple(v for _, v in given)


def has_table(conn: SyncConnection, name: str) -> bool:
    """Whether the schema ``conn`` reads has the table (a reader of an older schema)."""
    if isinstance(conn, sqlite3.Connection):
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def local_file(where: Where) -> Path | None:
    """The file the database lives in on this machine (SQLite's; its -wal/-shm beside it), or
    None for a database server."""
    return Target.of(where).path


# A fetched row is typed as optional; these two say where it cannot be.
async def one_row(cursor: Cursor) -> Row:
    """The row of a query that always yields one (an aggregate, a PRAGMA)."""
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


async def returned_id(cursor: Cursor) -> int:
    """The id an ``INSERT … RETURNING id`` returned (both engines; lastrowid is SQLite's)."""
    return int((await one_row(cursor))[0])


async def schema_version(conn: Connection) -> int:
    pg = _as_postgresql(conn)
    if pg is not None:
        return await pgschema.schema_version(pg)
    async with conn.execute("PRAGMA user_version") as cur:
        row = await one_row(cur)
    return int(row[0])


async def migrate(conn: Connection) -> tuple[int, int]:
    """Apply pending migrations; returns (version before, version after). Idempotent."""
    before = await schema_version(conn)
    if before > SCHEMA_VERSION:
        raise DatabaseNotReady(
            f"database schema version {before} is newer than this mrod ({SCHEMA_VERSION}); upgrade mrod"
        )
    pg = _as_postgresql(conn)
    if pg is not None:
        pending = [(v, name, postgresql_statements(name, sql))
                   for v, name, sql in migrations("postgresql") if v > before]
        if pending:
            before = await pgschema.migrate(pg, pending, now())
        return before, SCHEMA_VERSION
    for version, _name, sql in migrations():
        if version <= before:
            continue
        # executescript would COMMIT first; run statement by statement inside our transaction.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(sql):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return before, SCHEMA_VERSION


def postgresql_statements(name: str, sql: str) -> list[str]:
    """A migration's statements for PostgreSQL: a ``.postgresql.sql`` file runs as written
    (one script: it may hold function bodies), a shared file is split and translated."""
    if name.endswith(".postgresql.sql"):
        return [sql]
    return [pgschema.translate(statement) for statement in _split_sql(sql)]


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement knows triggers)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise RuntimeError(f"incomplete SQL statement in migration: {current[:80]!r}")
    return statements


@asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """One atomic unit of work; nested uses become savepoints of the outer transaction."""
    if conn.in_transaction:
        await conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            await conn.execute("ROLLBACK TO nested")
            await conn.execute("RELEASE nested")
            raise
        await conn.execute("RELEASE nested")
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


@asynccontextmanager
async def opened(where: Where, *, create: bool = False) -> AsyncIterator[Connection]:
    """Open, bring the schema up to date, and close at the end."""
    conn = await connect(where, create=create)
    try:
        try:
            # A PostgreSQL database exists before mrod does: only init/serve (create) set it up,
            # as only they create the SQLite file.
            if not create and _as_postgresql(conn) is not None and await schema_version(conn) == 0:
                raise DatabaseNotReady(f"database {Target.of(where).describe()} has no mrod schema;"
                                       " run 'mrod init' first")
            await migrate(conn)
        except driver_errors() as exc:
            reason = " ".join(str(exc).split())
            raise DatabaseNotReady(f"database {Target.of(where).describe()} cannot be used: {reason}") from None
        yield conn
    finally:
        await conn.close()


def open_readonly(path: Path, busy_timeout_ms: int = 0) -> sqlite3.Connection:
    """A read-only stdlib connection for lookups (autocommit: every query sees the latest commit).

    Raises DatabaseNotReady when the file is missing, not a database, or has no schema.
    """
    path = Path(path)
    if not path.exists():
        raise DatabaseNotReady(f"database {path} does not exist")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise DatabaseNotReady(f"database {path} cannot be opened: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.OperationalError as exc:
        conn.close()
        if is_busy(exc):
            raise  # locked by another process: the caller may wait and retry
        raise DatabaseNotReady(f"database {path} cannot be read: {exc}") from None
    except sqlite3.Error as exc:
        conn.close()
        raise DatabaseNotReady(f"database {path} cannot be read: {exc}") from None
    if version < 1:
        conn.close()
        raise DatabaseNotReady(f"database {path} has no mrod schema; run 'mrod init'")
    return conn
