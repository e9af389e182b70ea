"""Database access: aiosqlite connections for writers (CLI, panel, importer), a read-only
stdlib connection for lookupd's hot path, versioned migrations, transactions.

``connect``/``opened``/``migrate`` take a ``[database]`` config (or a path or URL): with
``url`` set they open PostgreSQL through mrod.infra.pgconn, which offers the same connection
API, so the repository modules run unchanged on either engine.

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
from typing import TYPE_CHECKING, AsyncIterator, cast

import aiosqlite

from mrod.infra import pgschema
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady

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


def engine_of(conn: aiosqlite.Connection) -> str:
    """"sqlite" or "postgresql": for the few statements that must differ."""
    return str(getattr(conn, "engine", "sqlite"))


def _as_postgresql(conn: aiosqlite.Connection) -> PgConnection | None:
    return cast("PgConnection", conn) if engine_of(conn) == "postgresql" else None


def _driver_errors() -> tuple[type[Exception], ...]:
    """The exceptions a driver raises for a database it cannot use (psycopg's only if loaded)."""
    psycopg = sys.modules.get("psycopg")
    return (sqlite3.DatabaseError, psycopg.Error) if psycopg is not None else (sqlite3.DatabaseError,)


def text_agg(engine: str, expr: str) -> str:
    """SQL joining ``expr`` over a group with commas (no shared spelling in SQLite 3.40)."""
    return f"string_agg({expr}, ',')" if engine == "postgresql" else f"group_concat({expr})"


async def connect(where: Where, *, create: bool = False) -> aiosqlite.Connection:
    """Open the database for writing. Raises DatabaseNotReady when it is missing or unreadable.

    On PostgreSQL the connection is a pgconn.Connection: it offers the part of aiosqlite's
    API the repository modules use, and is typed as aiosqlite's so they keep one annotation.
    """
    target = Target.of(where)
    if target.url:
        from mrod.infra import pgconn     # psycopg (and libpq) only for a PostgreSQL URL

        return cast(aiosqlite.Connection,
                    await pgconn.Connection.open(target.url, target.describe(), target.password()))
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
    return conn


# aiosqlite types a fetched row and a new rowid as optional; these two say where they cannot be.
async def one_row(cursor: aiosqlite.Cursor) -> aiosqlite.Row:
    """The row of a query that always yields one (an aggregate, a PRAGMA)."""
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the query returned no row")
    return row


async def returned_id(cursor: aiosqlite.Cursor) -> int:
    """The id an ``INSERT … RETURNING id`` returned (both engines; lastrowid is SQLite's)."""
    return int((await one_row(cursor))[0])


def inserted_id(cursor: aiosqlite.Cursor) -> int:
    """The rowid of the row the INSERT on ``cursor`` added."""
    if cursor.lastrowid is None:
        raise RuntimeError("the statement inserted no row")
    return cursor.lastrowid


async def schema_version(conn: aiosqlite.Connection) -> int:
    pg = _as_postgresql(conn)
    if pg is not None:
        return await pgschema.schema_version(pg)
    async with conn.execute("PRAGMA user_version") as cur:
        row = await one_row(cur)
    return int(row[0])


async def migrate(conn: aiosqlite.Connection) -> tuple[int, int]:
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
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
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
async def opened(where: Where, *, create: bool = False) -> AsyncIterator[aiosqlite.Connection]:
    """Open, bring the schema up to date, and close at the end."""
    conn = await connect(where, create=create)
    try:
        try:
            # A PostgreSQL database exists before mrod does: only init/serve (create) set it up,
            # as only they create the SQLite file.
            if not create and engine_of(conn) == "postgresql" and await schema_version(conn) == 0:
                raise DatabaseNotReady(f"database {Target.of(where).describe()} has no mrod schema;"
                                       " run 'mrod init' first")
            await migrate(conn)
        except _driver_errors() as exc:
            reason = " ".join(str(exc).split())
            raise DatabaseNotReady(f"database {Target.of(where).describe()} cannot be used: {reason}") from None
        yield conn
    finally:
        await conn.close()


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock; waiting may help."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


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
