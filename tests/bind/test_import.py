"""Import runs end to end against a real named: its named.conf read (through the real
named-checkconf when installed), routes resolved from it, a catalog pulled from it by AXFR;
the sync rules (manual edits survive, grace period), dry runs, one transaction per run."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.infra.dbapi import Connection
from mrod.entities import audit, domains, relays
from mrod import bindimport
from mrod.infra import db
from mrod.answers import routing
from mrod.entities.audit import Actor
from mrod.bindimport import namedconf, runs
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.answers.routestore import RouteStore
from tests.conftest import make_config
from tests.harness.named import Named, named_conf, zone_text

pytestmark = pytest.mark.bind

ZONES = {
    "txt.example": zone_text("txt.example", '@ TXT "mrodxmailrelay=primary"\n@ MX 10 mx\nmx A 192.0.2.1\n'),
    "byid.example": zone_text("byid.example", '@ TXT "mrodxmailrelay=2"\n'),
    "dom.example": zone_text("dom.example", "@ MX 10 mx\nmx A 192.0.2.1\n"),
    "sub.example": zone_text("sub.example", "mail A 192.0.2.2\n"),
    "none.example": zone_text("none.example"),
    "catalog.test": zone_text("catalog.test", 'version TXT "2"\nm1.zones PTR member.example.\n'),
    "member.example": zone_text("member.example", "@ MX 10 mx\nmx A 192.0.2.1\n"),
}
OPERATOR = Actor(name="alice", origin="cli", remote="local")
STARTER = Actor(name="tester", origin="cli", remote="local")


@dataclass
class Scene:
    named: Named
    cfg: Config
    conn: Connection

    def serve_only(self, *zones: str) -> None:
        """Rewrite the named.conf the importer reads: BIND now serves only these zones."""
        self.named.conf.write_text(named_conf(self.named.directory, self.named.port, {z: "" for z in zones}))

    async def run(self, **kwargs) -> bindimport.Result:
        return await bindimport.run(self.conn, self.cfg, STARTER, **kwargs)

    async def domain(self, name: str) -> domains.Domain:
        return await domains.get(self.conn, name)

    async def row(self, name: str) -> tuple:
        async with self.conn.execute(
            "SELECT missing_since, disabled_by_import, manual_fields FROM domain WHERE name = ?", (name,)) as cur:
            return tuple(await db.one_row(cur))

    def dump(self) -> list[str]:
        with sqlite3.connect(self.cfg.database.path) as plain:
            return list(plain.iterdump())


@pytest.fixture
async def scene(start_named, tmp_path: Path):
    named = start_named(ZONES)
    cfg = make_config(tmp_path, bind={
        "named_conf": str(named.conf), "resolver": "127.0.0.1", "resolver_port": named.port,
        "strategies": ["dns-txt", "dns-dom", "dns-sub"], "catalog_port": named.port,
        "catalog_zones": ["catalog.test"], "grace_hours": 24.0, "dns_timeout": 2.0})
    async with db.opened(cfg.database, create=True) as conn:
        await relays.add(conn, OPERATOR, name="primary", host="mx1.example.net", tls="encrypt")
        await relays.add(conn, OPERATOR, name="backup", host="mx2.example.net")
        yield Scene(named, cfg, conn)


async def test_first_run_imports_zones_with_routes(scene: Scene) -> None:
    result = await scene.run()
    assert [(a.kind, a.name) for a in result.plan.actions] == [
        ("add", "byid.example"), ("add", "dom.example"), ("add", "member.example"), ("add", "sub.example"),
        ("add", "txt.example")]
    assert result.plan.problems == [("none.example", "not imported: no usable route (no mrodxmailrelay= TXT "
                                                     "record; no MX record; mail.none.example has no address)")]
    assert ("catalog.test", "a catalog zone") in result.discovery.skipped
    txt, byid = await scene.domain("txt.example"), await scene.domain("byid.example")
    dom, sub = await scene.domain("dom.example"), await scene.domain("sub.example")
    assert (txt.route, txt.relay_name, txt.source, txt.enabled) == ("dns-txt", "primary", "bind", True)
    assert (byid.route, byid.relay_name) == ("dns-txt", "backup")
    assert (dom.route, dom.route_kind) == ("dns-dom", "mx")
    assert (sub.route, sub.host, sub.port) == ("dns-sub", "mail.sub.example", 25)
    # What Postfix is told comes from the same rows, at once.
    store = RouteStore.open(scene.cfg.database.path)
    try:
        assert routing.answer(store, "transport", "User@TXT.example").wire() == "OK relay:[mx1.example.net]:25"
        assert routing.answer(store, "transport", "x@dom.example").wire() == "OK relay:dom.example"
        assert routing.answer(store, "transport", "x@sub.example").wire() == "OK relay:[mail.sub.example]:25"
        assert routing.answer(store, "relay_domains", "none.example").status == routing.NOTFOUND
    finally:
        store.close()
    # Recorded and audited, as bind-import, saying who started it.
    [run] = await runs.recent(scene.conn)
    assert (run.id, run.status, run.counts["added"], run.counts["problems"]) == (result.run_id, "ok", 5, 1)
    assert (run.actor, run.origin, run.remote) == ("bind-import", "bind", "cli:tester")
    assert run.messages == [f"none.example: {result.plan.problems[0][1]}"]
    [entry] = await audit.entries(scene.conn, entity="bind_import")
    assert entry.after is not None
    assert (entry.action, entry.entity_key, entry.after["added"]) == ("import", str(run.id), 5)
    adds = await audit.entries(scene.conn, entity="domain", action="add")
    assert {(e.actor, e.origin) for e in adds} == {("bind-import", "bind")} and len(adds) == 5


async def test_second_run_changes_nothing(scene: Scene) -> None:
    await scene.run()
    before = scene.dump()
    again = await scene.run()
    assert again.plan.actions == [] and again.counts["unchanged"] == 5
    # Only the new run's own row and its audit entry were written.
    new = [line for line in scene.dump() if line not in before]
    assert len(new) == 2 and "INSERT INTO \"import_run\"" in new[1] and "'bind_import'" in new[0]


async def test_dry_run_writes_nothing(scene: Scene) -> None:
    before = scene.dump()
    preview = await bindimport.preview(scene.conn, scene.cfg)
    assert preview.dry_run and preview.run_id is None
    assert [a.kind for a in preview.plan.actions] == ["add"] * 5
    assert scene.dump() == before


async def test_operator_edits_survive_reimport(scene: Scene) -> None:
    await scene.run()
    await domains.update(scene.conn, OPERATOR, "txt.example", relay="backup")
    await domains.update(scene.conn, OPERATOR, "dom.example", enabled=False)
    await domains.update(scene.conn, OPERATOR, "sub.example", recipients="listed", tls="verify")
    # The same change made by an import (not an operator) is the importer's to correct.
    await domains.update(scene.conn, Actor("bind-import", "bind"), "byid.example", relay="primary", route="dns-txt")
    assert (await scene.row("txt.example"))[2] == '["relay_id", "route"]'
    result = await scene.run()
    assert [(a.kind, a.name, a.spec) for a in result.plan.actions] == [
        ("update", "byid.example", {"relay": "backup", "route": "dns-txt"})]
    txt, dom, sub = [await scene.domain(n) for n in ("txt.example", "dom.example", "sub.example")]
    assert (txt.relay_name, txt.route) == ("backup", "relay")
    assert dom.enabled is False
    assert (sub.recipients, sub.tls, sub.route) == ("listed", "verify", "dns-sub")
    assert (await scene.domain("byid.example")).relay_name == "backup"


async def test_vanished_zones_are_disabled_then_deleted_after_grace(scene: Scene) -> None:
    await scene.run()
    await domains.add(scene.conn, OPERATOR, "handmade.example", relay="primary")
    await domains.update(scene.conn, OPERATOR, "byid.example", enabled=False)     # off by hand
    scene.serve_only("txt.example", "member.example", "catalog.test")
    t0 = datetime.now(timezone.utc)
    first = await scene.run(now=t0)
    assert [(a.kind, a.name) for a in first.plan.actions] == [
        ("disable", "byid.example"), ("disable", "dom.example"), ("disable", "sub.example")]
    assert (await scene.domain("dom.example")).enabled is False
    assert await scene.row("dom.example") == (t0.strftime("%Y-%m-%dT%H:%M:%SZ"), 1, None)
    assert (await scene.row("byid.example"))[:2] == (t0.strftime("%Y-%m-%dT%H:%M:%SZ"), 0)
    assert (await scene.domain("handmade.example")).enabled is True
    # Audited as `mrod domain set` audits a change: one update row per domain, the domain before
    # and after, with the import's mark beside it.
    stamp = t0.strftime("%Y-%m-%dT%H:%M:%SZ")
    [disabled] = await audit.entries(scene.conn, entity="domain", key="dom.example", actor="bind-import",
                                     action="update")
    shape = set(domains.audited(await scene.domain("dom.example")))
    assert disabled.action == "update"
    assert disabled.before is not None and disabled.after is not None
    assert set(disabled.before) == set(disabled.after) == shape | {"missing_since", "disabled_by_import"}
    assert (disabled.before["enabled"], disabled.before["missing_since"], disabled.before["disabled_by_import"]) \
        == (True, None, False)
    assert (disabled.after["enabled"], disabled.after["missing_since"], disabled.after["disabled_by_import"]) \
        == (False, stamp, True)
    [marked] = await audit.entries(scene.conn, entity="domain", key="byid.example", actor="bind-import",
                                   action="update")
    assert marked.before is not None and marked.after is not None
    assert set(marked.after) == shape | {"missing_since"}           # off by hand: the import did not disable it
    assert (marked.before["missing_since"], marked.after["missing_since"]) == (None, stamp)
    assert marked.before["enabled"] is marked.after["enabled"] is False
    # An operator keeps one of them: it stays, missing or not.
    await domains.update(scene.conn, OPERATOR, "sub.example", enabled=True)
    waiting = await scene.run(now=t0 + timedelta(hours=23))
    assert waiting.plan.actions == []
    gone = await scene.run(now=t0 + timedelta(hours=24))
    assert [(a.kind, a.name) for a in gone.plan.actions] == [("delete", "byid.example"), ("delete", "dom.example")]
    names = [d.name for d in (await domains.search(scene.conn, limit=None)).domains]
    assert names == ["handmade.example", "member.example", "sub.example", "txt.example"]
    [entry] = await audit.entries(scene.conn, entity="domain", key="dom.example", action="remove")
    assert entry.actor == "bind-import"


async def test_returning_zone_is_reenabled_unless_disabled_by_hand(scene: Scene) -> None:
    await scene.run()
    await domains.update(scene.conn, OPERATOR, "byid.example", enabled=False)
    scene.serve_only("txt.example")
    await scene.run()
    scene.serve_only(*ZONES)
    back = await scene.run()
    assert {a.name: a.spec for a in back.plan.actions} == {
        "byid.example": {}, "dom.example": {"enabled": True}, "member.example": {"enabled": True},
        "sub.example": {"enabled": True}}
    assert (await scene.domain("dom.example")).enabled is True
    assert (await scene.domain("byid.example")).enabled is False
    assert await scene.row("dom.example") == (None, 0, None)
    back_in, *_ = await audit.entries(scene.conn, entity="domain", key="dom.example", actor="bind-import")
    assert back_in.before is not None and back_in.after is not None
    assert (back_in.before["enabled"], back_in.before["disabled_by_import"]) == (False, True)
    assert (back_in.after["enabled"], back_in.after["missing_since"], back_in.after["disabled_by_import"]) \
        == (True, None, False)
    kept_off, *_ = await audit.entries(scene.conn, entity="domain", key="byid.example", actor="bind-import")
    assert kept_off.action == "update" and kept_off.after is not None and kept_off.before is not None
    assert kept_off.after["missing_since"] is None and kept_off.before["missing_since"] is not None
    assert kept_off.after["enabled"] is False


async def test_malformed_named_conf_changes_nothing_and_is_recorded(scene: Scene) -> None:
    await scene.run()
    before = await domains.search(scene.conn, limit=None)
    text = scene.named.conf.read_text()
    scene.named.conf.write_text(text + 'zone "broken.example" { type primary file "x"; };\n')
    line = text.count("\n") + 1
    with pytest.raises(namedconf.ConfError) as info:
        await scene.run()
    assert (info.value.file, info.value.line) == (str(scene.named.conf), line)
    assert await domains.search(scene.conn, limit=None) == before
    failed = (await runs.recent(scene.conn))[0]
    assert (failed.status, failed.error, failed.counts["added"]) == ("failed", str(info.value), 0)
    [entry, _ok] = await audit.entries(scene.conn, entity="bind_import")
    assert entry.after is not None
    assert entry.after["status"] == "failed" and entry.after["error"] == str(info.value)


async def test_a_run_is_one_transaction(scene: Scene) -> None:
    # The database refuses one of the five adds: none of them may stay.
    await scene.conn.execute(
        "CREATE TRIGGER refuse_sub BEFORE INSERT ON domain WHEN NEW.name = 'sub.example'"
        " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    with pytest.raises(MrodError, match="refused by the test"):
        await scene.run()
    assert (await domains.count(scene.conn))["total"] == 0
    assert await audit.count(scene.conn, entity="domain") == 0
    [failed] = await runs.recent(scene.conn)
    assert failed.status == "failed" and failed.error is not None and "refused by the test" in failed.error


async def test_zone_types_setting(scene: Scene) -> None:
    scene.named.conf.write_text(scene.named.conf.read_text().replace(
        'zone "dom.example" { type primary;', 'zone "dom.example" { type secondary; primaries { 127.0.0.1; };'))
    scene.cfg = make_config(scene.cfg.base_dir, bind={**_bind_values(scene.cfg), "zone_types": ["secondary"]})
    result = await scene.run(dry_run=True)
    assert [(a.kind, a.name) for a in result.plan.actions] == [("add", "dom.example")]


def _bind_values(cfg: Config) -> dict:
    b = cfg.bind
    return {"named_conf": str(b.named_conf), "resolver": b.resolver, "resolver_port": b.resolver_port,
            "strategies": list(b.strategies), "catalog_port": b.catalog_port, "sources": list(b.sources),
            "catalog_zones": list(b.catalog_zones)}


async def test_catalog_source_imports_members_as_catalog(scene: Scene) -> None:
    # The first source that names a zone decides its source.
    scene.cfg = make_config(scene.cfg.base_dir, bind={**_bind_values(scene.cfg), "sources": ["catalog", "named.conf"]})
    await scene.run()
    member, txt = await scene.domain("member.example"), await scene.domain("txt.example")
    assert (member.source, member.route) == ("catalog", "dns-dom")
    assert txt.source == "bind"
