"""SQL recipient sources on a primary's mail database shaped like PostfixAdmin's (domain,
mailbox and alias tables; the query joins them): the private PostgreSQL and a private MariaDB,
each with a reader whose password comes from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from mrod.entities import domains, recipients
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.recipientsources import sources, spec, sync
from tests.data import ACTOR
from tests.harness import postgres
from tests.harness.mariadb import MariaDB

SCHEMA = """
CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, active SMALLINT NOT NULL DEFAULT 1);
CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, domain VARCHAR(255) NOT NULL,
                      active SMALLINT NOT NULL DEFAULT 1);
CREATE TABLE alias (address VARCHAR(255) PRIMARY KEY, goto TEXT NOT NULL, domain VARCHAR(255) NOT NULL,
                    active SMALLINT NOT NULL DEFAULT 1);
INSERT INTO domain VALUES ('example.com', 1), ('gone.example', 0);
INSERT INTO mailbox VALUES ('Anna@example.com', 'example.com', 1), ('ben@example.com', 'example.com', 1),
    ('old@example.com', 'example.com', 0), ('x@gone.example', 'gone.example', 1);
INSERT INTO alias VALUES ('info@example.com', 'anna@example.com', 'example.com', 1),
    ('@example.com', 'anna@example.com', 'example.com', 0);
"""
QUERY = ("SELECT m.username FROM mailbox m JOIN domain d ON d.domain = m.domain WHERE m.active = 1 AND d.active = 1"
         " UNION SELECT a.address FROM alias a JOIN domain d ON d.domain = a.domain"
         " WHERE a.active = 1 AND d.active = 1")
EXPECTED = ["anna@example.com", "ben@example.com", "info@example.com"]


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    server = MariaDB()
    try:
        server.start()
        server.admin("CREATE DATABASE postfix; CREATE USER 'reader'@'127.0.0.1' IDENTIFIED BY 'maria-secret';"
                     " GRANT SELECT ON postfix.* TO 'reader'@'127.0.0.1';\nUSE postfix;\n" + SCHEMA)
        yield server
    finally:
        server.stop()


async def _sync(cfg: Config, conn: Connection, url: str, password_file: str) -> sync.Outcome:
    await domains.add(conn, ACTOR, "example.com", host="mx.example.com")
    await sources.add(conn, ACTOR, spec.parse({"name": "pfa", "kind": "sql", "url": url, "query": QUERY,
                                               "password_file": password_file}))
    await sources.use_for_domain(conn, ACTOR, "example.com", "pfa")
    return await sync.run(cfg, conn, "pfa")


@pytest.fixture
def postfixadmin() -> Iterator[tuple[str, str]]:
    """A PostfixAdmin-shaped database on the private PostgreSQL: (url, password file)."""
    server = postgres.cluster()
    server.admin("DROP DATABASE IF EXISTS postfixadmin WITH (FORCE)")
    server.admin("CREATE DATABASE postfixadmin OWNER mrod")
    try:
        with psycopg.connect(server.url("postfixadmin"), password=server.password, autocommit=True) as mail:
            mail.execute(SCHEMA.encode())
        yield server.url("postfixadmin"), str(server.password_file)
    finally:
        server.admin("DROP DATABASE IF EXISTS postfixadmin WITH (FORCE)")


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_postgresql_postfixadmin_database(cfg: Config, conn: Connection, postfixadmin: tuple[str, str]) -> None:
    out = await _sync(cfg, conn, *postfixadmin)
    assert out.applied, out.error
    assert [r.address for r in await recipients.list_for(conn, "example.com")] == EXPECTED
    assert out.ignored == 0          # gone.example is inactive in the primary's database


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_mariadb_postfixadmin_database(cfg: Config, conn: Connection, mariadb: MariaDB, tmp_path: Path) -> None:
    secret = tmp_path / "maria-password"
    secret.write_text("maria-secret\n")
    out = await _sync(cfg, conn, f"mysql://reader@127.0.0.1:{mariadb.port}/postfix", str(secret))
    assert out.applied, out.error
    assert [r.address for r in await recipients.list_for(conn, "example.com")] == EXPECTED


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_a_failing_query_says_why(cfg: Config, conn: Connection, mariadb: MariaDB, tmp_path: Path) -> None:
    secret = tmp_path / "maria-password"
    secret.write_text("wrong-maria\n")
    out = await _sync(cfg, conn, f"mysql://reader@127.0.0.1:{mariadb.port}/postfix", str(secret))
    assert not out.applied and "Access denied" in (out.error or "") and "wrong-maria" not in (out.error or "")
