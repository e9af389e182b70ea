"""A synchronous read-only PostgreSQL connection shaped like the stdlib sqlite3 connection
that the routing read side (mrod.answers.routestore) queries: ``execute(sql, params)`` returns
an iterable of rows, ``close()``. SQLite's ``?`` placeholders are translated as in pgconn.

Used where mrod answers "what would Postfix be told" outside lookupd (the CLI's ``mrod
lookup``, the panel's domain page) when the store is PostgreSQL. A refused or lost connection
is a DatabaseNotReady, which those callers already turn into a one-line error.
"""

from __future__ import annotations

from typing import Any, Sequence

import psycopg

from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.infra.pgconn import connect_failure, reason, translate


class ReadConnection:
    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self.where = where

    @classmethod
    def open(cls, target: Target, timeout_s: float = 5.0, application: str = "mrod") -> ReadConnection:
        try:
            conn = psycopg.connect(target.url, autocommit=True, **target.connect_options(application, timeout_s))  # type: ignore[arg-type]  # psycopg's connect takes libpq options as keywords
        except psycopg.Error as exc:
            raise connect_failure(target.describe(), exc) from None
        try:
            conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            conn.close()
            raise connect_failure(target.describe(), exc) from None
        return cls(conn, target.describe())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        """The executed cursor: iterable, with fetchone()/fetchall() like sqlite3's."""
        try:
            return self._conn.execute(translate(sql), tuple(params))
        except psycopg.OperationalError as exc:
            raise DatabaseNotReady(f"database {self.where} is unreachable: {reason(exc)}") from None

    def close(self) -> None:
        self._conn.close()
