"""The in-memory RouteSnapshot answers exactly as the SQL RouteStore, before and after changes
applied from the change journal (issue 10)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mrod.answers import routing
from mrod.answers.routestore import RouteStore
from mrod.answers import snapshotjournal, snapshotsql
from mrod.answers.snapshot import RouteSnapshot
from mrod.entities import domains, recipients, relays
from mrod.infra import db, journal
from tests.core.test_routing import CASES, DATA
from tests.data import ACTOR, seed_file

KEYS = sorted({(m, k) for m, k, _, _ in CASES}) + [
    ("relay_domains", "new.example"), ("transport", "a@new.example"), ("relay_domains", "renamed.example"),
    ("tls_policy", "[mx9.example.net]:25"), ("tls_policy", "[10.0.0.8]:2526"), ("tls_policy", "[10.0.0.7]:2526"),
    ("relay_recipients", "a@new.example"), ("transport", "a@sub.only.example.org"),
]


def answers(store: routing.Store) -> list[routing.Answer]:
    return [routing.answer(store, m, k) for m, k in KEYS]


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    p = tmp_path / "r.db"
    await seed_file(p, **DATA)
    return p


def load(path: Path) -> tuple[RouteSnapshot, RouteStore]:
    sql = RouteStore.open(path)
    snap = snapshotsql.load(sql.conn)
    snap.sql = sql
    return snap, sql


async def test_snapshot_answers_every_case_as_sql_does(path: Path) -> None:
    snap, sql = load(path)
    try:
        assert len(snap) == 12
        for m, k, status, value in CASES:
            result = routing.answer(snap, m, k)
            assert (result.status, result.value) == (status, value), (m, k, result.why)
        assert answers(snap) == answers(sql)   # the same reasons too
    finally:
        sql.close()


async def test_journal_changes_keep_the_snapshot_equal_to_sql(path: Path) -> None:
    snap, sql = load(path)
    try:
        async with db.opened(path) as c:
            await domains.add(c, ACTOR, "new.example", relay="primary", recipients="listed")
            await recipients.add(c, ACTOR, "a@new.example")
            await domains.update(c, ACTOR, "only.example.org", include_subdomains=True, relay="tls465")
            await domains.update(c, ACTOR, "off.example.org", enabled=True)
            await domains.remove(c, ACTOR, "nosub.example.com")
            await relays.update(c, ACTOR, "plain", {"host": "mx9.example.net", "tls": "verify"})
            await domains.update(c, ACTOR, "own.example", host="10.0.0.8")
            await domains.add(c, ACTOR, "own2.example", host="10.0.0.7", port=2526, tls="encrypt")
            await relays.add(c, ACTOR, name="later", host="mx1.example.net", tls="secure")
            await c.execute("UPDATE domain SET name = 'renamed.example' WHERE name = 'mx.example'")  # a raw writer
        changes = journal.since(sql.conn, snap.position, 1000)
        assert changes, "the writers recorded nothing"
        before = answers(snap)
        snapshotjournal.apply(snap, sql.conn, changes)
        assert snap.position == journal.position(sql.conn)
        assert answers(snap) == answers(sql)
        assert answers(snap) != before
        assert routing.answer(snap, "tls_policy", "[mx1.example.net]:25").value == "secure"
    finally:
        sql.close()


async def test_bulk_add_writes_one_reload_row(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        start = journal.position(raw)
    async with db.opened(path) as c:
        await domains.add_many(c, ACTOR, [(f"d{i}.bulk.example", {"relay": "primary"})
                                          for i in range(journal.BULK + 1)])
        await domains.add_many(c, ACTOR, [("few.bulk.example", {"relay": "primary"})])
    sql = RouteStore.open(path)
    try:
        rows = sql.conn.execute("SELECT entity, key FROM change WHERE seq > ?", (start,)).fetchall()
        assert rows == [("all", None), ("domain", "few.bulk.example")]
        assert journal.since(sql.conn, start, 1000) is None      # 'all': reload everything
        assert journal.since(sql.conn, start + 1, 1000) == [journal.Change(start + 2, "domain", "few.bulk.example")]
        assert journal.since(sql.conn, start + 2, 1000) == []
    finally:
        sql.close()


async def test_a_gap_in_the_journal_means_reload(path: Path) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE relay SET tls = 'secure' WHERE name = 'plain'")
        raw.execute("UPDATE relay SET tls = 'verify' WHERE name = 'plain'")
        last = journal.position(raw)
        raw.execute("DELETE FROM change WHERE seq = ?", (last - 1,))   # pruned past a reader
    sql = RouteStore.open(path)
    try:
        assert journal.since(sql.conn, last - 2, 1000) is None
        relay_id = sql.conn.execute("SELECT id FROM relay WHERE name = 'plain'").fetchone()[0]
        assert journal.since(sql.conn, last - 1, 1000) == [journal.Change(last, "relay", str(relay_id))]
    finally:
        sql.close()


async def test_a_journal_behind_the_reader_means_reload(path: Path) -> None:
    # An older copy restored into the same file: its journal ends before the reader's position.
    sql = RouteStore.open(path)
    try:
        last = journal.position(sql.conn)
        assert journal.since(sql.conn, last, 1000) == []
        assert journal.since(sql.conn, last + 5, 1000) is None
    finally:
        sql.close()
