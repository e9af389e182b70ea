"""``mrod migrate-to``: an SQLite installation moves into an empty PostgreSQL database, every
row as it was, in one transaction; a non-empty target or a failed copy changes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mrod.entities import sessions, tokens, users
from mrod.entities.audit import Actor
from mrod.infra import db
from tests.harness.postgres import Cluster, cluster

# The source of a migration is SQLite by definition.
pytestmark = pytest.mark.parametrize("engine", ["sqlite"])

READS = [("domain", "list", "--json"), ("relay", "list", "--json"), ("recipient", "list", "shop.example"),
         ("lookup", "relay_domains", "shop.example"), ("lookup", "relay_recipients", "sales@shop.example"),
         ("lookup", "transport", "x@xn--bcher-kva.example"), ("lookup", "tls_policy", "[mx1.example.net]:25"),
         ("user", "list")]


def _rows(url: str, password: str, path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, from PostgreSQL (url) and SQLite (path), to compare."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with sqlite3.connect(path) as lite, psycopg.connect(url, password=password) as pg:
        for (table,) in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                     " AND name NOT LIKE 'sqlite_%'"):
            mine = sorted(lite.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            theirs = sorted((tuple(r) for r in pg.execute(f'SELECT * FROM "{table}"'.encode())), key=repr)
            assert mine == theirs, table
            found[table] = mine
    return found


async def _people(path: Path) -> None:
    async with db.opened(path) as conn:
        user = await users.add(conn, Actor.system("test"), "operator", "correct horse battery",
                               perms=("domains", "relay"), rounds=4)
        await tokens.create(conn, Actor.system("test"), user.id, "deploy")
        await sessions.create(conn, user.id, 8, remote="192.0.2.1", user_agent="test")


def _pg_config(config_file: Path, server: Cluster, name: str) -> Path:
    path = config_file.parent / "pg.toml"
    path.write_text(config_file.read_text().replace(
        '[database]\n', f'[database]\nurl = "{server.url(name)}"\npassword_file = "{server.password_file}"\n'))
    return path


def test_an_sqlite_installation_moves_to_postgresql_with_every_row(
        mrod, config_file: Path, pg_empty_database: tuple[Cluster, str], capsys: pytest.CaptureFixture[str]) -> None:
    from mrod.cli import main

    server, name = pg_empty_database
    assert mrod("init").code == 0
    assert mrod("relay", "add", "primary", "--host", "mx1.example.net", "--tls", "encrypt").code == 0
    assert mrod("domain", "add", "shop.example", "--relay", "primary", "--recipients", "listed").code == 0
    assert mrod("domain", "add", "bücher.example", "--host", "192.0.2.25", "--port", "2525").code == 0
    assert mrod("domain", "add", "old.example", "--relay", "primary", "--disabled").code == 0
    assert mrod("recipient", "add", "sales@shop.example").code == 0
    assert mrod("recipient-source", "add", "crm", "--url", "https://crm.example/export.json").code == 0
    assert mrod("relay", "set", "primary", "--recipient-source", "crm").code == 0
    assert mrod("domain", "set", "old.example", "--recipient-source", "none").code == 0
    sqlite_path = config_file.parent / "var" / "mrod.db"
    asyncio.run(_people(sqlite_path))
    before = {args: mrod(*args) for args in READS}
    assert all(r.code == 0 for r in before.values()) and "shop.example" in before[READS[0]].out

    moved = mrod("migrate-to", server.url(name), "--password-file", str(server.password_file))
    assert moved.code == 0, moved.err
    assert moved.out.startswith("copied ") and f"(schema version {db.SCHEMA_VERSION})" in moved.out
    assert server.password not in moved.out + moved.err
    rows = _rows(server.url(name), server.password, sqlite_path)
    assert len(rows["domain"]) == 3 and rows["api_token"] and rows["session"] and rows["audit"]
    assert rows["recipient_source"] and rows["recipient_source_relay"] and rows["recipient_source_domain"]

    pg_config = _pg_config(config_file, server, name)

    def on_pg(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--config", str(pg_config), *args])
        return code, capsys.readouterr().out

    for args, result in before.items():
        assert on_pg(*args) == (result.code, result.out), args
    # New rows get new ids: the identity counters were moved past the copied ones.
    assert on_pg("domain", "add", "new.example", "--relay", "primary")[0] == 0
    assert on_pg("relay", "add", "second", "--host", "192.0.2.7")[0] == 0
    # The journal was copied as it was (no trigger ran during the copy) and goes on after it.
    copied = max(seq for seq, _entity, _key in rows["change"])
    with psycopg.connect(server.url(name), password=server.password) as pg:
        after = [tuple(r) for r in pg.execute("SELECT seq, entity, key FROM change WHERE seq > %s ORDER BY seq",
                                              (copied,))]
    assert after == [(copied + 1, "domain", "new.example"), (copied + 2, "relay", "2")]

    again = mrod("migrate-to", server.url(name), "--password-file", str(server.password_file))
    assert again.code == 1 and again.err.count("\n") == 1 and "is not empty" in again.err
    assert "new.example" in on_pg("domain", "list")[1]


def test_a_failed_copy_writes_nothing(mrod, config_file: Path, pg_empty_database: tuple[Cluster, str]) -> None:
    server, name = pg_empty_database
    assert mrod("init").code == 0
    assert mrod("relay", "add", "primary", "--host", "mx1.example.net").code == 0
    # SQLite's NOCASE folds ASCII only: these two names are distinct there, one name to
    # PostgreSQL's case-insensitive collation. The copy must fail as a whole.
    with sqlite3.connect(config_file.parent / "var" / "mrod.db") as raw:
        raw.executemany("INSERT INTO relay (name, host, created_at, updated_at) VALUES (?, 'h', '', '')",
                        [("ärger",), ("Ärger",)])
    r = mrod("migrate-to", server.url(name), "--password-file", str(server.password_file))
    assert r.code == 1 and r.err.count("\n") == 1 and "nothing was written" in r.err
    assert cluster().admin(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == [(1,)]
    with psycopg.connect(server.url(name), password=server.password) as pg:
        assert pg.execute("SELECT count(*) FROM information_schema.tables"
                          " WHERE table_schema = current_schema()").fetchone() == (0,)
    refused = mrod("migrate-to", "mysql://root@db/mrod")
    assert refused.code == 1 and refused.err.strip() == "mrod: error: the target must be a postgresql:// URL"
