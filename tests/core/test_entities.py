"""Relays, domains, recipients: rules, errors that change nothing, audit rows."""

from __future__ import annotations

import sqlite3

import pytest

from mrod.infra.dbapi import Connection
from mrod.entities import audit, domainimport, domains, recipients, relays
from mrod.infra import db
from mrod.entities.audit import Actor
from mrod.infra.errors import Conflict, InUse, InvalidInput, NotFound
from tests.data import seed


async def snapshot(conn: Connection) -> tuple:
    out = []
    for table in ("relay", "domain", "recipient", "audit"):
        async with conn.execute(f"SELECT * FROM {table} ORDER BY id") as cur:
            out.append([tuple(r) for r in await cur.fetchall()])
    return tuple(out)


@pytest.fixture
async def seeded(conn: Connection) -> Connection:
    await seed(conn, relays=[dict(name="primary", host="mx1.example.net"),
                             dict(name="backup", host="mx2.example.net", port=2525, tls="verify")],
               domains=[dict(name="example.com", relay="primary")])
    return conn


async def test_relay_add_get_update_and_audit(seeded: Connection, actor: Actor) -> None:
    relay = await relays.get(seeded, "PRIMARY")
    assert (relay.host, relay.port, relay.protocol, relay.tls, relay.domain_count) == ("mx1.example.net", 25, "smtp", "may", 1)
    updated = await relays.update(seeded, actor, "primary", {"port": "2526", "tls": "encrypt"})
    assert (updated.port, updated.tls) == (2526, "encrypt")
    [last] = await audit.entries(seeded, entity="relay", limit=1)
    assert (last.action, last.actor, last.origin, last.entity_key) == ("update", "tester", "cli", "primary")
    assert last.before is not None and last.after is not None
    assert last.before["port"] == 25 and last.after["port"] == 2526


@pytest.mark.parametrize(
    "fields,error",
    [
        ({"name": "primary", "host": "x.example"}, Conflict),
        ({"name": "Primary", "host": "x.example"}, Conflict),
        ({"name": "new", "host": "bad host"}, InvalidInput),
        ({"name": "new", "host": "x.example", "port": 0}, InvalidInput),
        ({"name": "new", "host": "x.example", "protocol": "lmtp"}, InvalidInput),
        ({"name": "new", "host": "x.example", "tls": "dane"}, InvalidInput),
        ({"name": "12", "host": "x.example"}, InvalidInput),
    ],
)
async def test_bad_relays_change_nothing(seeded: Connection, actor: Actor, fields: dict, error: type) -> None:
    before = await snapshot(seeded)
    with pytest.raises(error):
        await relays.add(seeded, actor, **fields)
    assert await snapshot(seeded) == before


async def test_relay_in_use_cannot_be_removed(seeded: Connection, actor: Actor) -> None:
    before = await snapshot(seeded)
    with pytest.raises(InUse, match="1 domain"):
        await relays.remove(seeded, actor, "primary")
    assert await snapshot(seeded) == before
    await relays.remove(seeded, actor, "primary", reassign_to="backup")
    moved = await domains.get(seeded, "example.com")
    assert moved.relay_name == "backup"
    # The move is the domain's own update row, as `mrod domain set example.com --relay backup` writes.
    [entry] = await audit.entries(seeded, entity="domain", key="example.com", action="update")
    assert entry.before is not None and entry.after is not None
    assert (entry.before["relay_name"], entry.after["relay_name"]) == ("primary", "backup")
    assert entry.after == domains.audited(moved)
    assert entry.before["route"] == entry.after["route"]
    assert await audit.entries(seeded, entity="relay", action="reassign") == []
    with pytest.raises(NotFound):
        await relays.get(seeded, "primary")


async def test_relay_rename_conflict(seeded: Connection, actor: Actor) -> None:
    with pytest.raises(Conflict):
        await relays.update(seeded, actor, "backup", {"name": "PRIMARY"})


async def test_domain_routes(seeded: Connection, actor: Actor) -> None:
    d = await domains.add(seeded, actor, "Host.Example", host="10.1.1.1", port=2525, protocol="smtps", tls="secure")
    assert (d.route_kind, d.host, d.port, d.protocol, d.tls, d.route) == ("host", "10.1.1.1", 2525, "smtps", "secure", "relay")
    d = await domains.update(seeded, actor, "host.example", relay="backup")
    assert (d.route_kind, d.relay_name, d.host, d.port, d.protocol) == ("relay", "backup", None, None, None)
    d = await domains.update(seeded, actor, "host.example", mx=True)
    assert (d.route_kind, d.route, d.relay_id) == ("mx", "dns-dom", None)
    d = await domains.update(seeded, actor, "host.example", host="mx9.example.net")
    assert (d.port, d.protocol, d.tls) == (25, "smtp", "may")
    d = await domains.update(seeded, actor, "host.example", port=587)
    assert (d.host, d.port) == ("mx9.example.net", 587)


@pytest.mark.parametrize(
    "name,spec,error",
    [
        ("example.com", {"relay": "primary"}, Conflict),
        ("EXAMPLE.com.", {"relay": "primary"}, Conflict),
        ("new.example", {}, InvalidInput),
        ("new.example", {"relay": "nosuch"}, NotFound),
        ("new.example", {"relay": "primary", "host": "x.example"}, InvalidInput),
        ("new.example", {"relay": "primary", "port": 26}, InvalidInput),
        ("new.example", {"mx": True, "port": 26}, InvalidInput),
        ("new.example", {"host": "x.example", "port": 70000}, InvalidInput),
        ("new.example", {"relay": "primary", "recipients": "some"}, InvalidInput),
        ("new.example", {"relay": "primary", "enabled": "yes"}, InvalidInput),
        ("new.example", {"relay": "primary", "owner_id": 999}, InvalidInput),
        ("new.example", {"relay": "primary", "colour": "red"}, InvalidInput),
        ("bad_name.example", {"relay": "primary"}, InvalidInput),
    ],
)
async def test_bad_domains_change_nothing(seeded: Connection, actor: Actor, name: str, spec: dict,
                                          error: type) -> None:
    before = await snapshot(seeded)
    with pytest.raises(error):
        await domains.add(seeded, actor, name, **spec)
    assert await snapshot(seeded) == before


async def test_port_without_host_is_refused(seeded: Connection, actor: Actor) -> None:
    with pytest.raises(InvalidInput, match="give a host"):
        await domains.update(seeded, actor, "example.com", port=2525)


async def test_domain_remove_cascades_recipients(seeded: Connection, actor: Actor) -> None:
    await domains.update(seeded, actor, "example.com", recipients="listed")
    await recipients.add(seeded, actor, "a@example.com")
    await domains.remove(seeded, actor, "example.com")
    async with seeded.execute("SELECT count(*) FROM recipient") as cur:
        assert (await db.one_row(cur))[0] == 0
    actions = [(e.action, e.entity) for e in await audit.entries(seeded, limit=3)]
    assert actions[0] == ("remove", "domain")


async def test_search_filters_sort_and_pages(seeded: Connection, actor: Actor) -> None:
    for i in range(30):
        await domains.add(seeded, actor, f"d{i:02}.example", relay="backup" if i % 2 else "primary",
                          enabled=i % 3 != 0)
    page = await domains.search(seeded, q="D1", sort="name", limit=5)
    assert page.total == 10 and [d.name for d in page.domains] == [f"d1{i}.example" for i in range(5)]
    page = await domains.search(seeded, relay="backup", enabled=False, limit=None)
    assert {d.name for d in page.domains} == {f"d{i:02}.example" for i in range(30) if i % 2 and i % 3 == 0}
    page = await domains.search(seeded, sort="name", descending=True, limit=2, offset=1)
    assert [d.name for d in page.domains] == ["d29.example", "d28.example"]  # example.com is first
    page = await domains.search(seeded, q="100%_", limit=None)
    assert page.total == 0   # LIKE wildcards in the search text are literal
    with pytest.raises(InvalidInput):
        await domains.search(seeded, sort="name; DROP TABLE domain")


async def test_bulk_add_strict_refuses_everything_on_one_bad_line(seeded: Connection, actor: Actor) -> None:
    before = await snapshot(seeded)
    lines = ["a.example", "b.example backup", "bad_line.example", "c.example nosuch", "example.com"]
    with pytest.raises(domainimport.ImportRefused) as info:
        await domainimport.bulk_add(seeded, actor, lines, relay="primary")
    refused = {(n, why.split(" ")[0]) for n, _, why in info.value.report.refused}
    assert {n for n, _ in refused} == {3, 4, 5}
    assert await snapshot(seeded) == before


async def test_bulk_add_lenient_and_skip_existing(seeded: Connection, actor: Actor) -> None:
    lines = ["# comment", "", "a.example", "A.example", "b.example backup  # trailing comment",
             "bad_line.example", "example.com", "c.example primary extra"]
    report = await domainimport.bulk_add(seeded, actor, lines, relay="primary", strict=False, skip_existing=True)
    assert report.added == ["a.example", "b.example"]
    assert [(n, d) for n, d, _ in report.skipped] == [(4, "a.example"), (7, "example.com")]
    assert [n for n, _, _ in report.refused] == [6, 8]
    assert (await domains.get(seeded, "b.example")).relay_name == "backup"
    rows = await audit.entries(seeded, entity="domain", action="add", limit=10)
    assert {"a.example", "b.example"} <= {r.entity_key for r in rows}


async def test_bulk_add_needs_a_route(seeded: Connection, actor: Actor) -> None:
    with pytest.raises(domainimport.ImportRefused, match="no relay"):
        await domainimport.bulk_add(seeded, actor, ["a.example"])
    report = await domainimport.bulk_add(seeded, actor, ["a.example"], mx=True)
    d = await domains.get(seeded, "a.example")
    assert report.added == ["a.example"] and (d.route_kind, d.route) == ("mx", "dns-dom")


async def test_import_writes_and_audits_as_add_does(seeded: Connection, actor: Actor) -> None:
    """`mrod domain import` and `mrod domain add` share one write path: same row, same audit."""
    added = await domains.add(seeded, actor, "one.example", relay="primary")
    await domainimport.bulk_add(seeded, actor, ["two.example primary"])
    imported = await domains.get(seeded, "two.example")
    skip = {"id", "name", "created_at", "updated_at"}
    assert {k: v for k, v in added.as_dict().items() if k not in skip} == \
        {k: v for k, v in imported.as_dict().items() if k not in skip}
    entries = {r.entity_key: r for r in await audit.entries(seeded, entity="domain", action="add", limit=10)}
    first, second = entries["one.example"].after, entries["two.example"].after
    assert first == domains.audited(added) and second == domains.audited(imported)
    assert set(first) == set(second) and {k for k in first if first[k] != second[k]} == {"name"}
    # --mx: routed by the domain's own MX, as `domain add --mx` stores it.
    await domains.add(seeded, actor, "three.example", mx=True)
    await domainimport.bulk_add(seeded, actor, ["four.example"], mx=True)
    three, four = await domains.get(seeded, "three.example"), await domains.get(seeded, "four.example")
    assert (three.route, three.tls, three.relay_id) == (four.route, four.tls, four.relay_id) == ("dns-dom", "may", None)


@pytest.mark.parametrize("lines, parsed", [
    (["a.example", "  b.example relay1 ", "# all comment", "", "c.example # x"],
     [(1, "a.example", None), (2, "b.example", "relay1"), (5, "c.example", None)]),
    (["a.example r extra"], [(1, "a.example r extra", None)]),
])
def test_import_line_parser(lines: list[str], parsed: list[tuple[int, str, str | None]]) -> None:
    assert list(domainimport.parse_lines(lines)) == parsed


async def test_recipients(seeded: Connection, actor: Actor) -> None:
    await domains.update(seeded, actor, "example.com", include_subdomains=True, recipients="listed")
    r = await recipients.add(seeded, actor, "Joe@Sub.Example.com")
    assert (r.domain, r.address) == ("example.com", "joe@sub.example.com")
    with pytest.raises(Conflict):
        await recipients.add(seeded, actor, "JOE@sub.example.com")
    with pytest.raises(NotFound, match="add the domain first"):
        await recipients.add(seeded, actor, "x@elsewhere.example")
    assert [x.address for x in await recipients.list_for(seeded, "example.com")] == ["joe@sub.example.com"]
    await recipients.remove(seeded, actor, "joe@sub.example.com")
    with pytest.raises(NotFound):
        await recipients.remove(seeded, actor, "joe@sub.example.com")


async def test_nested_transactions_roll_back_together(seeded: Connection, actor: Actor) -> None:
    before = await snapshot(seeded)
    with pytest.raises(Conflict):
        async with db.transaction(seeded):
            await domains.add(seeded, actor, "new1.example", relay="primary")
            await domains.add(seeded, actor, "example.com", relay="primary")
    assert await snapshot(seeded) == before


async def test_migrations_are_idempotent(tmp_path) -> None:
    path = tmp_path / "m.db"
    async with db.opened(path, create=True) as c:
        assert await db.schema_version(c) == db.SCHEMA_VERSION
    async with db.opened(path) as c:
        assert await db.migrate(c) == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)
        async with c.execute("PRAGMA journal_mode") as cur:
            assert (await db.one_row(cur))[0] == "wal"


async def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    from mrod.infra.errors import DatabaseNotReady
    with pytest.raises(DatabaseNotReady, match="newer"):
        async with db.opened(path):
            pass


async def test_missing_database_is_reported(tmp_path) -> None:
    from mrod.infra.errors import DatabaseNotReady
    with pytest.raises(DatabaseNotReady, match="mrod init"):
        await db.connect(tmp_path / "absent.db")
