"""lookupd answers from its in-memory snapshot, and the very next lookup after any commit
answers from the committed state (issue 10): writes through mrod, raw SQL, bulk imports;
replaced and removed files answer TEMP; the fallbacks (no -shm, no inotify, no journal)."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import weakref
from pathlib import Path

from mrod.entities import domains, relays
from mrod.infra import db
from mrod.lookupd import freshness
from mrod.lookupd.daemon import Lookupd
from tests.data import ACTOR, seed_file
from tests.lookupd.conftest import DATA, SocketmapClient


async def until_snapshot(d: Lookupd, c: SocketmapClient) -> int:
    """Ask until the snapshot is in use (it loads in the background); its domain count."""
    for _ in range(500):
        await c.ask("relay_domains", "example.com")
        if d.service.snapshot_domains is not None:
            return d.service.snapshot_domains
        await asyncio.sleep(0.01)
    raise AssertionError("the snapshot never loaded")


async def test_changes_by_every_writer_reach_the_next_lookup(lookupd_factory) -> None:
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    assert await until_snapshot(d, c) == 2
    async with db.opened(d.config.database.path) as conn:
        for i in range(10):
            name = f"new{i}.example"
            await domains.add(conn, ACTOR, name, relay="primary")
            assert await c.ask("relay_domains", name) == f"OK {name}"
            await domains.update(conn, ACTOR, name, enabled=False)
            assert await c.ask("relay_domains", name) == "NOTFOUND "
            await domains.remove(conn, ACTOR, name)
            assert await c.ask("transport", f"a@{name}") == "NOTFOUND "
        await relays.update(conn, ACTOR, "primary", {"host": "mx7.example.net", "port": 2525})
        assert await c.ask("transport", "a@example.com") == "OK relay:[mx7.example.net]:2525"
        assert await c.ask("tls_policy", "[mx7.example.net]:2525") == "OK encrypt"
    with sqlite3.connect(d.config.database.path) as raw:      # not through mrod: the triggers
        raw.execute("UPDATE domain SET include_subdomains = 0 WHERE name = 'example.com'")
    assert await c.ask("relay_domains", "a.example.com") == "NOTFOUND "
    with sqlite3.connect(d.config.database.path) as raw:      # an INSERT no journal row records
        raw.execute("INSERT INTO domain (name, relay_id, created_at, updated_at)"
                    " SELECT 'raw.example', id, 'x', 'x' FROM relay WHERE name = 'primary'")
    assert await c.ask("relay_domains", "raw.example") == "OK raw.example"
    assert d.service.snapshot_domains == 3      # all of it answered from memory, kept fresh
    await c.close()


async def test_a_bulk_import_is_answered_at_once_and_then_from_memory(lookupd_factory) -> None:
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    await until_snapshot(d, c)
    async with db.opened(d.config.database.path) as conn:
        await domains.add_many(conn, ACTOR, [(f"d{i}.bulk.example", {"relay": "primary"}) for i in range(3000)])
    # One 'all' row: the snapshot reloads in the background, the database answers meanwhile.
    assert await c.ask("relay_domains", "d2999.bulk.example") == "OK d2999.bulk.example"
    assert await until_snapshot(d, c) == 3002
    assert await c.ask("relay_domains", "d17.bulk.example") == "OK d17.bulk.example"
    await c.close()


async def test_a_file_moved_away_or_replaced_is_never_answered_from_memory(lookupd_factory, tmp_path) -> None:
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    await until_snapshot(d, c)
    path = d.config.database.path
    os.rename(path, str(path) + ".away")
    assert (await c.ask("relay_domains", "example.com")).startswith("TEMP ")
    assert d.service.snapshot_domains is None
    os.rename(str(path) + ".away", path)
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    other = tmp_path / "other.db"
    async with db.opened(other, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mx2.example.net")
        await domains.add(conn, ACTOR, "other.example", relay="primary")
    await until_snapshot(d, c)
    os.replace(other, path)
    assert await c.ask("relay_domains", "example.com") == "NOTFOUND "     # the new file's answer
    assert await c.ask("relay_domains", "other.example") == "OK other.example"
    await c.close()


async def test_without_shm_header_or_inotify_freshness_still_holds(lookupd_factory, monkeypatch, tmp_path) -> None:
    # No inotify: a stat per lookup. Not in WAL mode at start: no -shm, PRAGMA data_version.
    monkeypatch.setattr(freshness, "_inotify_on", lambda directory: -1)
    path = tmp_path / "mrod.db"
    await seed_file(path, **DATA)
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode = DELETE")
    assert not Path(f"{path}-shm").exists()
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    await until_snapshot(d, c)
    assert not d.service._stores._mark.uses_header
    assert not d.service._stores._watch.uses_inotify
    async with db.opened(path) as conn:          # a writer that turns WAL on again
        await domains.add(conn, ACTOR, "late.example", relay="primary")
        assert await c.ask("relay_domains", "late.example") == "OK late.example"
        await domains.update(conn, ACTOR, "late.example", enabled=False)
        assert await c.ask("relay_domains", "late.example") == "NOTFOUND "
    os.rename(path, str(path) + ".away")
    assert (await c.ask("relay_domains", "example.com")).startswith("TEMP ")
    await c.close()


async def test_a_database_without_the_journal_is_answered_from_sql(lookupd_factory, tmp_path) -> None:
    path = tmp_path / "mrod.db"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    for version, _name, sql in db.migrations():
        if version < 5:
            for statement in db._split_sql(sql):
                raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    raw.execute("INSERT INTO relay (name, host, created_at, updated_at) VALUES ('p', 'mx.example.net', 'x', 'x')")
    raw.execute("INSERT INTO domain (name, relay_id, created_at, updated_at) VALUES ('old.example', 1, 'x', 'x')")
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    assert await c.ask("relay_domains", "old.example") == "OK old.example"
    raw.execute("INSERT INTO domain (name, relay_id, created_at, updated_at) VALUES ('older.example', 1, 'x', 'x')")
    assert await c.ask("relay_domains", "older.example") == "OK older.example"
    await asyncio.sleep(0.1)
    assert d.service.snapshot_domains is None
    raw.close()
    await c.close()


def test_one_inotify_instance_per_directory_serves_every_holder(tmp_path) -> None:
    a, b = freshness.EntryWatch(tmp_path / "x.db"), freshness.EntryWatch(tmp_path / "x.db")
    shared = a._watch
    assert shared is b._watch and a.uses_inotify
    assert not a.pending() and not b.pending()
    (tmp_path / "x.db").write_text("")
    assert a.pending()
    assert b.pending()            # a read the events; b still learns that something happened
    assert not a.pending() and not b.pending()
    os.rename(tmp_path / "x.db", tmp_path / "y.db")
    assert b.pending() and a.pending()
    a.close()
    b.close()
    assert shared.fd == -1 and b.pending()     # closed: every call says "check"


async def test_a_reload_lets_go_of_the_old_snapshot_and_its_precomputed_replies(lookupd_factory) -> None:
    """The precomputed replies (issue 23) hold their snapshot: once lookups are answered from
    the database during a reload, nothing may keep the old one alive next to the one loading
    (two 1M-domain snapshots would break the memory bound)."""
    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    await until_snapshot(d, c)
    assert await c.ask("transport", "u@example.com") == "OK relay:[mx1.example.net]:25"   # precomputed
    old = weakref.ref(d.service._stores.snapshot)
    async with db.opened(d.config.database.path) as conn:
        await domains.add_many(conn, ACTOR, [(f"d{i}.bulk.example", {"relay": "primary"}) for i in range(3000)])
    assert await c.ask("relay_domains", "d2999.bulk.example") == "OK d2999.bulk.example"   # the database's
    gc.collect()
    assert old() is None
    assert await until_snapshot(d, c) == 3002
    assert await c.ask("transport", "u@d5.bulk.example") == "OK relay:[mx1.example.net]:25"
    await c.close()
