"""The importer's additions to mrod.domains: manual_fields recorded on an operator's update,
and add_many (validated and audited as add)."""

from __future__ import annotations

import pytest

from mrod.infra.dbapi import Connection
from mrod.entities import audit, domains
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.errors import Conflict, InvalidInput, NotFound
from tests.data import seed

IMPORTER = Actor(name="bind-import", origin="bind", remote="cli:tester")


async def manual(conn: Connection, name: str) -> tuple:
    async with conn.execute("SELECT manual_fields, disabled_by_import FROM domain WHERE name = ?", (name,)) as cur:
        return tuple(await db.one_row(cur))


@pytest.fixture
async def seeded(conn: Connection) -> Connection:
    await seed(conn, relays=[dict(name="primary", host="mx1.example.net"), dict(name="backup", host="mx2.example.net")])
    await seed(conn, domains=[dict(name="a.example", relay="primary", route="dns-txt", source="bind")], actor=IMPORTER)
    return conn


@pytest.mark.parametrize("origin", ["cli", "panel", "api"])
async def test_operator_updates_are_recorded(seeded: Connection, origin: str) -> None:
    operator = Actor(name="alice", origin=origin)
    await domains.update(seeded, operator, "a.example", relay="backup")
    assert await manual(seeded, "a.example") == ('["relay_id", "route"]', 0)
    await domains.update(seeded, operator, "a.example", recipients="listed")
    assert await manual(seeded, "a.example") == ('["recipients", "relay_id", "route"]', 0)


@pytest.mark.parametrize("origin", ["bind", "system"])
async def test_other_updates_are_not_manual(seeded: Connection, origin: str) -> None:
    await domains.update(seeded, Actor(name="job", origin=origin), "a.example", relay="backup", paused=True)
    assert await manual(seeded, "a.example") == (None, 0)


async def test_unchanged_values_are_not_recorded(seeded: Connection, actor: Actor) -> None:
    await domains.update(seeded, actor, "a.example", enabled=True)
    assert await manual(seeded, "a.example") == (None, 0)


async def test_operator_enabled_clears_disabled_by_import(seeded: Connection, actor: Actor) -> None:
    await domains.update(seeded, IMPORTER, "a.example", enabled=False)
    await seeded.execute("UPDATE domain SET disabled_by_import = 1 WHERE name = 'a.example'")
    await domains.update(seeded, actor, "a.example", enabled=True)
    assert await manual(seeded, "a.example") == ('["enabled"]', 0)


async def test_add_many_is_audited_like_add(seeded: Connection) -> None:
    added = await domains.add_many(seeded, IMPORTER, [
        ("b.example", {"relay": "Backup", "route": "dns-txt", "source": "bind"}),
        ("c.example", {"mx": True, "route": "dns-dom", "source": "catalog"}),
        ("D.Example.", {"host": "mail.d.example", "port": 25, "route": "dns-sub", "source": "bind"}),
    ])
    assert [(d.name, d.route, d.route_kind, d.source) for d in sorted(added, key=lambda d: d.name)] == [
        ("b.example", "dns-txt", "relay", "bind"), ("c.example", "dns-dom", "mx", "catalog"),
        ("d.example", "dns-sub", "host", "bind")]
    single = (await audit.entries(seeded, key="a.example"))[0]
    batch = (await audit.entries(seeded, key="b.example"))[0]
    assert (batch.action, batch.actor, batch.origin, batch.before) == ("add", "bind-import", "bind", None)
    assert batch.after is not None and single.after is not None
    assert batch.after.keys() == single.after.keys()
    assert batch.after["relay_name"] == "backup"


@pytest.mark.parametrize(
    "items,error,message",
    [
        ([("x.example", {"relay": "nosuch"})], NotFound, "relay 'nosuch' does not exist"),
        ([("x.example", {"host": "bad host"})], InvalidInput, "x.example: 'bad host' contains white space"),
        ([("bad_name", {"mx": True})], InvalidInput, "bad_name: 'bad_name' needs at least 2 labels"),
        ([("x.example", {"mx": True}), ("X.example", {"mx": True})], Conflict, "'x.example' is listed twice"),
        ([("x.example", {"mx": True}), ("a.example", {"mx": True})], Conflict, "'a.example' already exists"),
        ([("x.example", {"nonsense": 1})], InvalidInput, "x.example: is not a domain field"),
    ],
)
async def test_add_many_refuses_all_or_nothing(seeded: Connection, items, error, message) -> None:
    before = await domains.count(seeded)
    audits = await audit.count(seeded)
    with pytest.raises(error, match=message):
        await domains.add_many(seeded, IMPORTER, items)
    assert await domains.count(seeded) == before and await audit.count(seeded) == audits
