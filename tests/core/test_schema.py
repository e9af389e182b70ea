"""The migrations build the same schema on both engines: tables, columns (type, NOT NULL,
default, case-insensitive collation), keys, unique and foreign-key constraints, CHECK
constraints, indexes, and triggers (name, table, timing, event, UPDATE OF columns; and the
rows they write: the change journal of 0005) — from one set of migration files (mrod.migrations)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mrod.infra import db, pgschema
from mrod.infra.engine import Target
from tests.harness.postgres import Cluster

TYPES = {"INTEGER": "bigint", "TEXT": "text", "REAL": "double precision"}
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
VERSION_TABLES = {"schema_migration"}   # PostgreSQL's version record (SQLite: PRAGMA user_version)
PARTS = ("columns", "key", "unique", "foreign", "indexes", "checks", "triggers")
_TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(\w+)\s+(BEFORE|AFTER|INSTEAD\s+OF)\s+(INSERT|UPDATE|DELETE)"
                      r"(?:\s+OF\s+(.*?))?\s+ON\s+(\w+)", re.IGNORECASE | re.DOTALL)


def sqlite_schema(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        schema: dict[str, Any] = {}
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            nocase = {m.group(1).lower() for m in re.finditer(r"(\w+)\s+[^,()]*COLLATE NOCASE", sql, re.IGNORECASE)}
            columns = {}
            for _cid, name, typ, notnull, default, pk in conn.execute(f'PRAGMA table_info("{table}")'):
                columns[name] = (TYPES[typ], bool(notnull or pk), default, name in nocase)
            keys = [r[1] for r in sorted(conn.execute(f'PRAGMA table_info("{table}")'), key=lambda r: r[5]) if r[5]]
            unique = set()
            for _seq, index, is_unique, origin, _partial in conn.execute(f'PRAGMA index_list("{table}")'):
                if is_unique and origin == "u":
                    unique.add(tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{index}")')))
            foreign = {(r[3], r[2], r[4], r[6]) for r in conn.execute(f'PRAGMA foreign_key_list("{table}")')}
            indexes = {}
            for name, index_sql in conn.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    (table,)):
                cols = tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
                indexes[name] = (cols, " WHERE " in index_sql.upper())
            checks = len(re.findall(r"\bCHECK\s*\(", sql, re.IGNORECASE))
            schema[table] = {"columns": columns, "key": keys, "unique": unique, "foreign": foreign,
                             "indexes": indexes, "checks": checks, "triggers": {}}
        # (SQLite's triggers are all FOR EACH ROW; the event is read from the statement itself)
        for (trigger_sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"):
            found = _TRIGGER.match(trigger_sql)
            assert found is not None, trigger_sql
            name, timing, event, columns_of, table = found.groups()
            of = frozenset(c.strip() for c in columns_of.split(",")) if columns_of else frozenset()
            schema[table]["triggers"][name] = (timing.upper(), event.upper(), "ROW", of)
        return schema
    finally:
        conn.close()


def postgresql_schema(url: str, password: str) -> dict[str, Any]:
    with psycopg.connect(url, password=password) as conn:
        schema: dict[str, Any] = {}
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " ORDER BY table_name") if r[0] not in VERSION_TABLES]
        for table in tables:
            columns = {}
            for name, typ, nullable, default, collation, identity in conn.execute(
                    "SELECT column_name, data_type, is_nullable, column_default, collation_name, is_identity"
                    " FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
                    (table,)):
                if default is not None:
                    default = re.sub(r"::(text|bigint|integer)$", "", default)
                columns[name] = (typ, nullable == "NO", None if identity == "YES" else default, collation == "nocase")
            constraints = conn.execute(
                "SELECT c.contype, c.conkey, c.confrelid::regclass::text, c.confkey, c.confdeltype, c.confrelid"
                " FROM pg_constraint c WHERE c.conrelid = %s::regclass", (f'"{table}"',)).fetchall()
            names: dict[int, str] = dict(conn.execute(
                "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                (f'"{table}"',)).fetchall())
            keys, unique, foreign, checks = [], set(), set(), 0
            for kind, conkey, ftable, fkey, on_delete, frel in constraints:
                if kind == "p":
                    keys = [names[k] for k in conkey]
                elif kind == "u":
                    unique.add(tuple(names[k] for k in conkey))
                elif kind == "c":
                    checks += 1
                elif kind == "f":
                    fnames: dict[int, str] = dict(conn.execute(
                        "SELECT attnum, attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0",
                        (frel,)).fetchall())
                    foreign.add((names[conkey[0]], ftable.strip('"'), fnames[fkey[0]], ON_DELETE[on_delete]))
            indexes = {}
            for name, definition in conn.execute(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
                    " AND i.tablename = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
                    " WHERE c.conindid = (quote_ident(i.indexname))::regclass)", (table,)):
                cols = re.search(r"\((.*?)\)", definition)
                assert cols is not None
                indexes[name] = (tuple(c.strip().strip('"') for c in cols.group(1).split(",")),
                                 " WHERE " in definition)
            triggers = {}
            for name, timing, event, orientation in conn.execute(
                    "SELECT trigger_name, action_timing, event_manipulation, action_orientation"
                    " FROM information_schema.triggers WHERE trigger_schema = current_schema()"
                    " AND event_object_table = %s", (table,)):
                of = frozenset(r[0] for r in conn.execute(
                    "SELECT event_object_column FROM information_schema.triggered_update_columns"
                    " WHERE trigger_schema = current_schema() AND trigger_name = %s AND event_object_table = %s",
                    (name, table)))
                if name == "change_notify":     # PostgreSQL only (0008_notify.postgresql.sql)
                    continue
                triggers[name] = (timing, event, orientation, of)
            schema[table] = {"columns": columns, "key": keys, "unique": unique, "foreign": foreign,
                             "indexes": indexes, "checks": checks, "triggers": triggers}
        return schema


async def _migrate(where: Any) -> tuple[int, int]:
    conn = await db.connect(where, create=True)
    try:
        return await db.migrate(conn)
    finally:
        await conn.close()


def test_both_engines_build_the_same_schema(tmp_path: Path, pg_empty_database: tuple[Cluster, str]) -> None:
    server, name = pg_empty_database
    target = Target(url=server.url(name), password_file=str(server.password_file))
    assert asyncio.run(_migrate(tmp_path / "mrod.db")) == (0, db.SCHEMA_VERSION)
    assert asyncio.run(_migrate(target)) == (0, db.SCHEMA_VERSION)
    lite, pg = sqlite_schema(tmp_path / "mrod.db"), postgresql_schema(target.url, server.password)
    assert sorted(lite) == sorted(pg)
    assert "user" in lite and "domain" in lite       # the comparison compares something
    for table in lite:
        for part in PARTS:
            assert lite[table][part] == pg[table][part], (table, part)
    assert lite["user"]["columns"]["name"][3] and lite["relay"]["checks"] >= 3
    assert lite["relay"]["triggers"]["change_relay_update"] == ("AFTER", "UPDATE", "ROW",
                                                                {"name", "host", "port", "protocol", "tls",
                                                                 "when_primary_up"})
    assert {t for t in lite if lite[t]["triggers"]} == {"change", "domain", "relay", "mta_sts"}
    assert "totp_secret" in pg["user"]["columns"] and "cleared_at" in pg["login_failure"]["columns"]
    # 0009_node_status, a pair: every node's lookupd sync status.
    assert lite["node_status"]["key"] == ["node"] and lite["node_status"]["checks"] == 1
    assert lite["node_status"]["columns"] == {
        "node": ("text", True, None, False), "lookupd_synced_at": ("text", False, None, False),
        "lookupd_connected": ("bigint", False, None, False), "reported_at": ("text", True, None, False),
        "public_addresses": ("text", False, None, False)}           # 0013: the trust kit's source
    # Migrating again changes nothing on either engine.
    assert asyncio.run(_migrate(tmp_path / "mrod.db")) == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)
    assert asyncio.run(_migrate(target)) == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)


def test_two_nodes_migrating_at_once_apply_each_migration_once(pg_empty_database: tuple[Cluster, str]) -> None:
    server, name = pg_empty_database
    target = Target(url=server.url(name), password_file=str(server.password_file))

    async def both() -> list[tuple[int, int]]:
        return list(await asyncio.gather(_migrate(target), _migrate(target)))

    results = sorted(asyncio.run(both()))
    assert results == [(0, db.SCHEMA_VERSION), (db.SCHEMA_VERSION, db.SCHEMA_VERSION)]
    with psycopg.connect(target.url, password=server.password) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migration ORDER BY version")]
    assert applied == [v for v, _, _ in db.migrations("postgresql")]   # every one, once


def test_a_migration_pair_runs_each_engine_its_own_file() -> None:
    names = {engine: [name for _v, name, _sql in db.migrations(engine)] for engine in db.ENGINES}
    assert [n[:4] for n in names["sqlite"]] == [n[:4] for n in names["postgresql"]]
    assert all(".postgresql." not in n for n in names["sqlite"])
    assert all(".sqlite." not in n for n in names["postgresql"])
    assert db.postgresql_statements("0009_x.postgresql.sql", "CREATE FUNCTION f() ...; SELECT 1;") == \
        ["CREATE FUNCTION f() ...; SELECT 1;"]


@pytest.mark.parametrize("shared, expected", [
    ("CREATE TABLE user (\n    id INTEGER PRIMARY KEY,\n    name TEXT NOT NULL COLLATE NOCASE\n) WITHOUT ROWID",
     'CREATE TABLE "user" (\n    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n'
     "    name TEXT NOT NULL COLLATE NOCASE\n)"),
    ("CREATE TABLE t (user_id INTEGER REFERENCES user(id), ms REAL, note TEXT DEFAULT 'user integer')",
     "CREATE TABLE t (user_id BIGINT REFERENCES \"user\"(id), ms DOUBLE PRECISION, note TEXT DEFAULT 'user integer')"),
    ("CREATE INDEX session_user ON session (user_id) -- the user's sessions",
     "CREATE INDEX \"session_user\" ON session (user_id) -- the user's sessions"),
])
def test_shared_sql_is_translated_outside_literals_and_comments(shared: str, expected: str) -> None:
    assert pgschema.translate(shared) == expected


# The same changes on both engines; the journal rows they leave (seq, entity, key). An UPDATE
# that sets no answer column writes nothing; explicit seqs at the end exercise the pruning.
JOURNALED = (
    "INSERT INTO relay (name, host, created_at, updated_at) VALUES ('r1', 'mx.example', 't', 't')",
    "INSERT INTO domain (name, relay_id, created_at, updated_at) VALUES ('a.example', 1, 't', 't')",
    "UPDATE domain SET updated_at = 'u', pause_reason = 'x'",
    # The policy's columns are journaled since 0011 (lookupd decides from its snapshot).
    "UPDATE domain SET paused = 1, quota_messages = 5",
    "UPDATE domain SET enabled = 0",
    "UPDATE domain SET enabled = 0, recipients = 'listed'",
    "UPDATE domain SET name = 'b.example'",
    "UPDATE domain SET name = 'B.example'",
    "UPDATE relay SET updated_at = 'u'",
    "UPDATE relay SET port = 2525",
    "UPDATE relay SET when_primary_up = 'defer'",
    "UPDATE domain SET relay_id = NULL, host = 'mx2.example'",
    "DELETE FROM domain",
    "DELETE FROM relay",
    # 0017: an MTA-STS answer journals its domain when it changes (not the other columns).
    "INSERT INTO mta_sts (domain) VALUES ('s.example')",
    "INSERT INTO mta_sts (domain, answer) VALUES ('t.example', 'dane')",
    "UPDATE mta_sts SET answer = 'dane'",
    "UPDATE mta_sts SET error = 'x'",
    "DELETE FROM mta_sts WHERE domain = 't.example'",
    "INSERT INTO change (entity) VALUES ('all')",
)
PRUNED = (
    "INSERT INTO change (seq, entity) VALUES (150001, 'all')",   # not a multiple of 1000: nothing pruned
    "INSERT INTO change (seq, entity) VALUES (200000, 'all')",   # removes seq <= 100000
)
EXPECTED = [
    (1, "relay", "1"), (2, "domain", "a.example"), (3, "domain", "a.example"), (4, "domain", "a.example"),
    (5, "domain", "a.example"), (6, "domain", "b.example"), (7, "domain", "b.example"),
    (8, "domain", "B.example"), (9, "relay", "1"), (10, "relay", "1"), (11, "domain", "B.example"),
    (12, "domain", "B.example"), (13, "relay", "1"), (14, "domain", "t.example"), (15, "domain", "s.example"),
    (16, "domain", "t.example"), (17, "all", None),
]


def test_both_engines_journal_the_same_rows_for_the_same_changes(
        tmp_path: Path, pg_database: tuple[Cluster, str]) -> None:
    server, name = pg_database
    asyncio.run(_migrate(tmp_path / "mrod.db"))
    lite = sqlite3.connect(tmp_path / "mrod.db")
    try:
        def sqlite_rows(statements: tuple[str, ...]) -> list[tuple[Any, ...]]:
            for statement in statements:
                lite.execute(statement)
            lite.commit()
            return lite.execute("SELECT seq, entity, key FROM change ORDER BY seq").fetchall()

        lite_journal, lite_pruned = sqlite_rows(JOURNALED), sqlite_rows(PRUNED)
    finally:
        lite.close()
    with psycopg.connect(server.url(name), password=server.password, autocommit=True) as pg:
        def pg_rows(statements: tuple[str, ...]) -> list[tuple[Any, ...]]:
            for statement in statements:
                pg.execute(statement.encode())   # fixed test SQL, no input
            return [tuple(r) for r in pg.execute("SELECT seq, entity, key FROM change ORDER BY seq")]

        pg_journal, pg_pruned = pg_rows(JOURNALED), pg_rows(PRUNED)
    assert lite_journal == pg_journal == EXPECTED
    assert lite_pruned == pg_pruned == [(150001, "all", None), (200000, "all", None)]
