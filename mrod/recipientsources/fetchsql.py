"""An SQL source: one query on a primary's PostgreSQL (psycopg) or MySQL/MariaDB (PyMySQL)
mail database — PostfixAdmin, Modoboa, mailcow keep mailboxes and aliases there. The first
column of every row is an address. Read-only, with connect and statement timeouts; runs in a
thread."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import psycopg
import pymysql  # type: ignore[import-untyped]  # PyMySQL ships no types

from mrod.recipientsources import addresses
from mrod.recipientsources.sources import Source


def fetch(source: Source, secret: str | None, timeout: float) -> list[str]:
    if urlsplit(source.url).scheme.lower() in ("mysql", "mariadb"):
        return _mysql(source, secret, timeout)
    return _postgresql(source, secret, timeout)


def _postgresql(source: Source, secret: str | None, timeout: float) -> list[str]:
    # A None password is left out of the connection string (libpq's own sources then apply).
    with psycopg.connect(source.url, connect_timeout=max(1, int(timeout)), autocommit=False, password=secret,
                         options=f"-c statement_timeout={int(timeout * 1000)}", application_name="mrod-sync") as conn:
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute(source.query or "")
            return addresses.as_text(row[0] for row in cur.fetchall())


def _mysql(source: Source, secret: str | None, timeout: float) -> list[str]:
    parts = urlsplit(source.url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or ""),
                           password=secret or "", database=unquote(parts.path.lstrip("/")) or None,
                           connect_timeout=max(1, int(timeout)), read_timeout=int(timeout),
                           write_timeout=int(timeout), charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute(source.query or "")
            return addresses.as_text(row[0] for row in cur.fetchall())
    finally:
        conn.close()
