"""The SQLite adapter of ``dbapi.Connection``: an aiosqlite connection whose errors are mrod's.

aiosqlite already has the shape the repositories use (``execute`` awaited or as ``async with``,
``fetchone``/``fetchall``, ``rowcount``, ``executemany``, ``in_transaction``); this adapter only
turns sqlite3's constraint errors into UniqueViolation / ForeignKeyViolation /
IntegrityViolation, and a lock that outlasted the busy timeout into DatabaseUnreachable, so
callers catch the same errors on either engine instead of reading SQLite's wording.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any, Iterable

import aiosqlite

from mrod.infra.dbapi import Params, Pending
from mrod.infra.errors import DatabaseUnreachable, ForeignKeyViolation, IntegrityViolation, UniqueViolation


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock; waiting may help."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def integrity(exc: sqlite3.IntegrityError) -> IntegrityViolation:
    """mrod's error for a constraint SQLite reports (its message: "UNIQUE constraint failed:
    domain.name", "FOREIGN KEY constraint failed", "NOT NULL constraint failed: t.c", …)."""
    text = str(exc)
    kind, _, where = text.partition(" constraint failed")
    where = where.lstrip(": ")
    if kind == "UNIQUE":
        return UniqueViolation(text, where)
    if kind == "FOREIGN KEY":
        return ForeignKeyViolation(text, where)
    return IntegrityViolation(text, where)


class SqliteConnection:
    """One aiosqlite connection (autocommit; transactions are explicit BEGIN/COMMIT)."""

    def __init__(self, conn: aiosqlite.Connection, where: str) -> None:
        self._conn = conn
        self.where = where
        self._closed = False

    @property
    def raw(self) -> aiosqlite.Connection:
        """The aiosqlite connection, for SQLite-only work (the copy to PostgreSQL)."""
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def closed(self) -> bool:
        return self._closed

    def execute(self, sql: str, params: Params | None = None, /) -> Pending[aiosqlite.Cursor]:
        return Pending(partial(self._run, sql, params))

    async def _run(self, sql: str, params: Params | None) -> aiosqlite.Cursor:
        try:
            return await self._conn.execute(sql, params if params is not None else ())
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    async def executemany(self, sql: str, rows: Iterable[Params], /) -> Any:
        try:
            return await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._fault(exc) from None

    def _fault(self, exc: sqlite3.Error) -> Exception:
        if isinstance(exc, sqlite3.IntegrityError):
            return integrity(exc)
        if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
            return DatabaseUnreachable(f"database {self.where} is busy (locked by another writer): {exc}")
        return exc

    async def close(self) -> None:
        self._closed = True
        await self._conn.close()
