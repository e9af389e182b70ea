"""lookupd on PostgreSQL (issue 11 points 2 and 3): a change by any writer is answered through
LISTEN/NOTIFY and the journal; PostgreSQL stopped, lookupd answers from its snapshot (in
memory, then from the file on disk after a restart) and reports how stale it is; PostgreSQL
back, it catches up by itself. Real PostgreSQL servers; every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import psycopg
import pytest

from mrod.entities import domains as domaincore
from mrod.entities import recipients as recipientcore
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.infra.pgread import PgSyncConnection
from mrod.lookupd import pgholder
from mrod.answers import snapshotfile
from mrod.lookupd.daemon import Lookupd
from mrod.lookupd.metricsserver import lookupd_families
from tests.conftest import make_config
from tests.data import ACTOR, seed
from tests.harness import postgres
from tests.lookupd.conftest import SocketmapClient

WAIT = 20.0   # seconds: the bound of every wait below (a change is normally answered in ms)


def _target(server: postgres.Cluster, name: str) -> Target:
    return Target(url=server.url(name), password_file=str(server.password_file))


async def _write(target: Target, **data: Any) -> None:
    async with db.opened(target) as conn:
        await seed(conn, **data)


async def _remove(target: Target, name: str) -> None:
    async with db.opened(target) as conn:
        await domaincore.remove(conn, ACTOR, name)


async def _start(tmp_path: Path, target: Target) -> Lookupd:
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file},
                      lookupd={"socketmap": "127.0.0.1:0", "policy": ""})
    daemon = Lookupd(cfg)
    await daemon.start()
    return daemon


async def _until(ask: Callable[[], Any], wanted: str) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        got = await ask()
        if got.startswith(wanted) or time.monotonic() > deadline:
            return str(got)
        await asyncio.sleep(0.05)


@pytest.fixture
async def clients() -> AsyncIterator[list[SocketmapClient]]:
    made: list[SocketmapClient] = []
    yield made
    for client in made:
        await client.close()


async def _client(daemon: Lookupd, made: list[SocketmapClient]) -> SocketmapClient:
    client = await SocketmapClient.connect(daemon.listener("socketmap").port)
    made.append(client)
    return client


async def test_a_change_by_any_writer_is_answered(
        tmp_path: Path, pg_database: tuple[postgres.Cluster, str], clients: list[SocketmapClient]) -> None:
    target = _target(*pg_database)
    await _write(target, relays=[dict(name="primary", host="mx1.example.net")],
                 domains=[dict(name="old.example", relay="primary")])
    daemon = await _start(tmp_path, target)
    try:
        client = await _client(daemon, clients)
        assert await client.ask("relay_domains", "old.example") == "OK old.example"
        assert await client.ask("relay_domains", "new.example") == "NOTFOUND "
        await _write(target, domains=[dict(name="new.example", relay="primary")])    # another process's write
        assert await _until(lambda: client.ask("relay_domains", "new.example"), "OK") == "OK new.example"
        await _remove(target, "old.example")
        assert await _until(lambda: client.ask("relay_domains", "old.example"), "NOTFOUND") == "NOTFOUND "
        # The snapshot answered (not a per-lookup SQL query), and it was synced just now.
        assert daemon.service.snapshot_domains == 1
        staleness = daemon.service.staleness()
        assert staleness is not None and staleness < WAIT
    finally:
        await daemon.stop()


def _in_memory(daemon: Lookupd) -> int | None:
    """How many listed recipients the snapshot lookups read holds (None: asked of SQL)."""
    snapshot = daemon.service._stores.snapshot   # what lookups read
    assert snapshot is not None
    return snapshot.recipients_in_memory


async def test_listed_recipients_are_answered_from_memory_and_follow_changes(
        tmp_path: Path, pg_database: tuple[postgres.Cluster, str], clients: list[SocketmapClient]) -> None:
    target = _target(*pg_database)
    await _write(target, relays=[dict(name="primary", host="mx1.example.net")],
                 domains=[dict(name="listed.example", relay="primary", recipients="listed",
                               include_subdomains=True)],
                 recipients=["joe@listed.example", "@sub.listed.example"])
    daemon = await _start(tmp_path, target)
    try:
        client = await _client(daemon, clients)
        assert _in_memory(daemon) == 2
        assert await client.ask("relay_recipients", "joe@listed.example") == "OK joe@listed.example"
        assert await client.ask("relay_recipients", "any@sub.listed.example") == "OK @sub.listed.example"
        assert await client.ask("relay_recipients", "ann@listed.example") == "NOTFOUND "
        async with db.opened(target) as conn:      # another node's writes, through the core API
            await recipientcore.add(conn, ACTOR, "ann@listed.example")
            await recipientcore.remove(conn, ACTOR, "joe@listed.example")
        assert await _until(lambda: client.ask("relay_recipients", "ann@listed.example"), "OK") == \
            "OK ann@listed.example"
        assert await _until(lambda: client.ask("relay_recipients", "joe@listed.example"), "NOTFOUND") == "NOTFOUND "
        assert await client.ask("relay_recipients", "any@sub.listed.example") == "OK @sub.listed.example"
        assert _in_memory(daemon) == 2
        await _remove(target, "listed.example")       # the domain goes, its recipients with it
        assert await _until(lambda: client.ask("relay_recipients", "ann@listed.example"), "NOTFOUND") == "NOTFOUND "
        assert _in_memory(daemon) == 0
    finally:
        await daemon.stop()


def test_a_journal_row_committed_after_a_later_one_is_not_missed(pg_database: tuple[postgres.Cluster, str]) -> None:
    """seq values commit out of order on PostgreSQL: the cursor still takes the earlier row
    when its transaction commits (SQLite's "next must be position + 1" rule would reload or
    skip it)."""
    server, name = pg_database
    url = server.url(name)
    with psycopg.connect(url, password=server.password, autocommit=True) as reader_raw, \
            psycopg.connect(url, password=server.password) as slow, \
            psycopg.connect(url, password=server.password, autocommit=True) as fast:
        reader = PgSyncConnection(reader_raw, "test")
        cursor = pgholder.JournalCursor.at(reader)
        slow.execute("INSERT INTO change (entity, key) VALUES ('domain', 'slow.example')")   # takes seq n
        fast.execute("INSERT INTO change (entity, key) VALUES ('domain', 'fast.example')")   # seq n+1, committed
        first = cursor.fresh(reader, 100)
        assert first is not None and [c.key for c in first] == ["fast.example"]
        slow.commit()
        second = cursor.fresh(reader, 100)
        assert second is not None and [c.key for c in second] == ["slow.example"]
        assert second[0].seq < first[0].seq
        assert cursor.fresh(reader, 100) == []       # nothing is taken twice
        slow.execute("INSERT INTO change (entity, key) VALUES ('domain', 'gone.example')")
        slow.rollback()                               # a hole in seq: costs nothing
        fast.execute("INSERT INTO change (entity, key) VALUES ('domain', 'after.example')")
        third = cursor.fresh(reader, 100)
        assert third is not None and [c.key for c in third] == ["after.example"]
        assert list(cursor.gaps) == [third[0].seq - 1]   # looked for again until GAP_WAIT
        # A snapshot loaded while a journal row is uncommitted takes it when it commits.
        slow.execute("INSERT INTO change (entity, key) VALUES ('domain', 'open.example')")
        fast.execute("INSERT INTO change (entity, key) VALUES ('domain', 'done.example')")
        loaded = pgholder.JournalCursor.at(reader)
        slow.commit()
        late = loaded.fresh(reader, 100)
        assert late is not None and [c.key for c in late] == ["open.example"]


def test_another_journal_under_the_same_seqs_means_reload(pg_database: tuple[postgres.Cluster, str]) -> None:
    """A failover to a standby that had not received the last commits hands out the seqs a
    node already saw to other changes: the node must reload, not skip them as seen."""
    server, name = pg_database
    with psycopg.connect(server.url(name), password=server.password, autocommit=True) as raw:
        reader = PgSyncConnection(raw, "test")
        raw.execute("INSERT INTO change (entity, key) VALUES ('domain', 'seen.example')")
        cursor = pgholder.JournalCursor.at(reader)
        assert cursor.mark == ("domain", "seen.example")
        raw.execute("INSERT INTO change (entity, key) VALUES ('domain', 'next.example')")
        twin = cursor.copy()
        found = twin.fresh(reader, 100)
        assert found is not None and [c.key for c in found] == ["next.example"]    # the same journal: go on
        assert twin.mark == ("domain", "next.example")
        # The lossy failover: the row at the cursor's seq now says something else.
        raw.execute("UPDATE change SET key = 'other.example' WHERE seq = %s", (cursor.high,))
        assert cursor.fresh(reader, 100) is None
        raw.execute("DELETE FROM change WHERE seq = %s", (cursor.high,))      # or is gone
        assert pgholder.JournalCursor(cursor.high, mark=cursor.mark).fresh(reader, 100) is None


async def test_an_outage_is_answered_from_the_snapshot_then_caught_up(
        tmp_path: Path, private_cluster: postgres.Cluster, clients: list[SocketmapClient]) -> None:
    server = private_cluster
    target = _target(server, server.new_database())
    await _write(target, relays=[dict(name="primary", host="mx1.example.net")],
                 domains=[dict(name="known.example", relay="primary"),
                          dict(name="listed.example", relay="primary", recipients="listed")],
                 recipients=["joe@listed.example"])
    daemon = await _start(tmp_path, target)
    snapshot_file = snapshotfile.file_for(daemon.config)   # the node's state directory
    try:
        client = await _client(daemon, clients)
        assert await client.ask("relay_domains", "known.example") == "OK known.example"
        assert await client.ask("relay_recipients", "joe@listed.example") == "OK joe@listed.example"
        server.pause()
        # The database is gone: known domains are still answered, unknown ones still NOTFOUND
        # (the snapshot is complete as of its last sync), and the staleness grows.
        deadline = time.monotonic() + WAIT
        while (daemon.service.staleness() or 0) < pgholder.POLL + 1 and time.monotonic() < deadline:
            assert await client.ask("relay_domains", "known.example") == "OK known.example"
            await asyncio.sleep(0.1)
        assert await client.ask("relay_domains", "known.example") == "OK known.example"
        assert await client.ask("transport", "joe@known.example") == "OK relay:[mx1.example.net]:25"
        assert await client.ask("relay_domains", "other.example") == "NOTFOUND "
        # Listed recipients too: from memory, not TEMP (a hung server must not hold lookups).
        assert await client.ask("relay_recipients", "joe@listed.example") == "OK joe@listed.example"
        assert await client.ask("relay_recipients", "ann@listed.example") == "NOTFOUND "
        [age] = [f for f in lookupd_families(daemon) if f.name == "mrod_lookupd_snapshot_staleness_seconds"]
        assert age.samples[0].value >= pgholder.POLL + 1
    finally:
        await daemon.stop()
    # The snapshot was kept on local disk; a lookupd started during the outage answers from it.
    assert "known.example" in json.loads(snapshot_file.read_text())["domains"]
    restarted = await _start(tmp_path, target)
    try:
        client = await _client(restarted, clients)
        assert await client.ask("relay_domains", "known.example") == "OK known.example"
        assert await client.ask("relay_recipients", "joe@listed.example") == "OK joe@listed.example"
        staleness = restarted.service.staleness()
        assert staleness is not None and staleness >= pgholder.POLL + 1
        # The database returns: lookupd reconnects and a change made now is answered.
        server.resume()
        await _write(target, domains=[dict(name="later.example", relay="primary")])
        assert await _until(lambda: client.ask("relay_domains", "later.example"), "OK") == "OK later.example"
        assert await client.ask("relay_domains", "known.example") == "OK known.example"
        assert (restarted.service.staleness() or 0) < pgholder.POLL + 1
        # The file on disk follows (written from the event loop, without waiting for a stop).
        deadline = time.monotonic() + WAIT
        while "later.example" not in json.loads(snapshot_file.read_text())["domains"]:
            assert time.monotonic() < deadline, "the snapshot file did not take the change"
            await asyncio.sleep(0.1)
    finally:
        await restarted.stop()
