"""One read-only query on another system's database — a primary's PostgreSQL (psycopg) or
MySQL/MariaDB (PyMySQL) mail database, which PostfixAdmin, Modoboa and mailcow keep mailboxes
and aliases in — returning the first column of every row (recipient sources, mrod.recipientsources).
Not mrod's own database: the drivers are named here, in infra, where engines are chosen.
Blocking: callers run it in a thread. Connect and statement timeouts bound it."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

# Each driver is imported where it is used: an SQLite installation of mrod runs without psycopg
# (tests/core/test_engine.py), and a source on one engine needs no driver of the other.

MYSQL_SCHEMES = ("mysql", "mariadb")


def first_column(url: str, query: str, secret: str | None, timeout: float) -> list[Any]:
    """The first column of every row ``query`` returns on the database at ``url``."""
    if urlsplit(url).scheme.lower() in MYSQL_SCHEMES:
        return _mysql(url, query, secret, timeout)
    return _postgresql(url, query, secret, timeout)


def _postgresql(url: str, query: str, secret: str | None, timeout: float) -> list[Any]:
    import psycopg

    # A None password is left out of the connection string (libpq's own sources then apply).
    with psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=False, password=secret,
                         options=f"-c statement_timeout={int(timeout * 1000)}", application_name="mrod-sync") as conn:
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute(query.encode())   # the operator's own query, given as it is
            return [row[0] for row in cur.fetchall()]


def _mysql(url: str, query: str, secret: str | None, timeout: float) -> list[Any]:
    import pymysql  # type: ignore[import-untyped]  # PyMySQL ships no types

    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or ""),
                           password=secret or "", database=unquote(parts.path.lstrip("/")) or None,
                           connect_timeout=max(1, int(timeout)), read_timeout=int(timeout),
                           write_timeout=int(timeout), charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute(query)
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
