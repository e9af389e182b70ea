"""The PostgreSQL adapter of ``dbapi.SyncConnection``: a synchronous session shaped like the
stdlib sqlite3 connection the routing and policy side queries (``execute(sql, params)`` returns
an iterable cursor with fetchone/fetchall, ``close()``). SQLite's ``?`` placeholders are
translated as in pgconn.

It reads (lookupd's follower, ``mrod lookup``, the panel's domain page, the metrics reader)
and, for the policy service, writes its callout cache (lookupd/pgpolicy.py): it is not a
read-only session (``open(read_only=False)``). A lost connection is a DatabaseUnreachable, which those callers turn into
TEMP, the database-unreachable policy answer or a one-line error.
"""

from __future__ import annotations

from typing import Any

import psycopg

from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseUnreachable
from mrod.infra.pgconn import connect_failure, connect_sync, reason, translate


class PgSyncConnection:
    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self.where = where

    @classmethod
    def open(cls, target: Target, timeout_s: float = 5.0, application: str = "mrod",
             read_only: bool = True) -> PgSyncConnection:
        """A session; ``read_only`` (the readers') has PostgreSQL refuse any write on it."""
        conn = connect_sync(target, application, timeout_s)
        if read_only:
            try:
                conn.execute("SET default_transaction_read_only = on")
            except psycopg.Error as exc:
                conn.close()
                raise connect_failure(target.describe(), exc) from None
        return cls(conn, target.describe())

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection (lookupd's follower LISTENs on it)."""
        return self._conn

    def execute(self, sql: str, params: Any = (), /) -> psycopg.Cursor[Any]:
        """The executed cursor: iterable, with fetchone()/fetchall() like sqlite3's."""
        try:
            return self._conn.execute(translate(sql), tuple(params))
        except psycopg.OperationalError as exc:
            raise DatabaseUnreachable(f"database {self.where} is unreachable: {reason(exc)}") from None

    def close(self) -> None:
        self._conn.close()
