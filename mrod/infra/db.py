"""SQLite access: aiosqlite connections for writers (CLI, panel, importer), a read-only
stdlib connection for lookupd's hot path, versioned migrations, transactions.

WAL mode lets lookupd read while a writer commits; every writer takes the write lock at the
start of its transaction (BEGIN IMMEDIATE) so two writers never deadlock on an upgrade.
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

from mrod.infra.errors import DatabaseNotReady

WRITER_BUSY_TIMEOUT_MS = 5000


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file, in order."""
    found = []
    for entry in resources.files("mrod.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
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


async def connect(path: Path, *, create: bool = False) -> aiosqlite.Connection:
    """Open the database for writing. Raises DatabaseNotReady when it is missing or unreadable."""
    path = Path(path)
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


def inserted_id(cursor: aiosqlite.Cursor) -> int:
    """The rowid of the row the INSERT on ``cursor`` added."""
    if cursor.lastrowid is None:
        raise RuntimeError("the statement inserted no row")
    return cursor.lastrowid


async def schema_version(conn: aiosqlite.Connection) -> int:
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
async def opened(path: Path, *, create: bool = False) -> AsyncIterator[aiosqlite.Connection]:
    """Open, bring the schema up to date, and close at the end."""
    conn = await connect(path, create=create)
    try:
        try:
            await migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise DatabaseNotReady(f"database {path} cannot be used: {exc}") from None
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
