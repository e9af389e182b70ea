"""Bulk changes and CSV (issue 13.5): one transaction, all or nothing, audited; an export read
back changes nothing; a preview writes nothing."""

from __future__ import annotations

import pytest

from mrod.infra.dbapi import Connection
from mrod.entities import audit, csvio, domainbulk, domains, relays, users
from mrod.entities.audit import Actor
from mrod.infra.errors import InvalidInput, NotFound
from tests.core.test_entities import snapshot


@pytest.fixture
async def many(conn: Connection, actor: Actor) -> Connection:
    await relays.add(conn, actor, name="old", host="mx1.example.net")
    await relays.add(conn, actor, name="new", host="mx2.example.net", port=2525)
    owner = await users.add(conn, actor, "olga", "olga password", rounds=4)
    for i in range(6):
        await domains.add(conn, actor, f"d{i}.example", relay="old" if i < 4 else "new",
                          owner_id=owner.id if i == 0 else None)
    return conn


async def test_apply_by_names_changes_each_and_audits_each_as_a_single_change(many, actor) -> None:
    result = await domainbulk.apply(many, actor, {"relay": "new", "recipients": "listed", "paused": True,
                                            "pause_reason": "migration", "include_subdomains": True},
                              domain_names=["d1.example", "D2.example", "d1.example"])
    assert result.changed == ["d1.example", "d2.example"] and result.unchanged == []
    d2 = await domains.get(many, "d2.example")
    assert (d2.relay_name, d2.recipients, d2.paused, d2.pause_reason, d2.include_subdomains) == \
        ("new", "listed", True, "migration", True)
    # One update row per domain changed, as a single change writes it; no summary row.
    rows = await audit.entries(many, action="update", entity="domain")
    assert sorted(r.entity_key or "" for r in rows) == ["d1.example", "d2.example"]
    [d2_row] = [r for r in rows if r.entity_key == "d2.example"]
    assert d2_row.after == domains.audited(d2)
    assert d2_row.before is not None and d2_row.before["relay_name"] == "old"
    assert await audit.entries(many, action="bulk-update") == []


async def test_apply_by_filter_and_unchanged_ones(many, actor) -> None:
    await domains.update(many, actor, "d3.example", enabled=False)
    result = await domainbulk.apply(many, actor, {"enabled": False}, filters=domainbulk.parse_filters(["relay=old"]))
    assert result.changed == ["d0.example", "d1.example", "d2.example"] and result.unchanged == ["d3.example"]
    assert (await domains.get(many, "d4.example")).enabled


async def test_one_refusal_changes_nothing(many, actor) -> None:
    before = await snapshot(many)
    with pytest.raises(NotFound):
        await domainbulk.apply(many, actor, {"enabled": False}, domain_names=["d1.example", "missing.example"])
    with pytest.raises(InvalidInput, match="quota_messages"):
        await domainbulk.apply(many, actor, {"quota_messages": "lots"}, domain_names=["d1.example", "d2.example"])
    with pytest.raises(InvalidInput, match="nothing to change"):
        await domainbulk.apply(many, actor, {}, domain_names=["d1.example"])
    with pytest.raises(InvalidInput, match="not a field"):
        await domainbulk.apply(many, actor, {"source": "bind"}, domain_names=["d1.example"])
    with pytest.raises(InvalidInput, match="no domain matches"):
        await domainbulk.apply(many, actor, {"enabled": False}, filters={"q": "nothing-like-this"})
    with pytest.raises(InvalidInput, match="KEY=VALUE"):
        domainbulk.parse_filters(["colour=red"])
    # A domains_own user: only their own domains, by name or by filter.
    olga = (await users.get(many, "olga")).id
    with pytest.raises(NotFound, match="only your own"):
        await domainbulk.apply(many, actor, {"enabled": False}, domain_names=["d0.example", "d1.example"], owner_id=olga)
    assert await snapshot(many) == before
    result = await domainbulk.apply(many, actor, {"enabled": False}, filters={}, owner_id=olga)
    assert result.changed == ["d0.example"]


async def test_csv_export_reads_back_unchanged_and_preview_writes_nothing(many, actor) -> None:
    await domains.add(many, actor, "own.example", host="mx9.example.net", port=2526, tls="encrypt",
                      quota_messages=50)
    await domains.add(many, actor, "bymx.example", mx=True, tls="verify", queue_lifetime="3d")
    await domains.update(many, actor, "d1.example", paused=True, pause_reason='say "hi", then wait')
    page = await domains.search(many, limit=None)
    owners = {u.id: u.name for u in await users.list_all(many)}
    text = csvio.export(page.domains, owners)
    assert text.splitlines()[0] == ",".join(csvio.COLUMNS)
    assert "own.example,,mx9.example.net,2526,smtp,encrypt,no,yes,no,accept_all,no,,50,,accept,inherit,,manual" in text
    assert "d0.example,old,,,,,no,yes,no,accept_all,no,,,,accept,inherit,olga,manual," in text
    assert "bymx.example,,,,,verify,yes,yes,no,accept_all,no,,,,accept,inherit,,manual,3d" in text     # retention
    before = await snapshot(many)
    report = await csvio.run(many, actor, text, apply=True)
    assert (report.added, report.changed, report.unchanged) == ([], [], 8)
    # Changes and an addition: the preview says what would happen, and writes nothing.
    edited = text.replace("d2.example,old,", "d2.example,new,").replace(",50,", ",75,")
    edited += "fresh.example,new,,,,,no,no,yes,listed,no,,,,accept,inherit,olga,manual,12h\n"
    preview = await csvio.run(many, actor, edited, apply=False)
    assert preview.added == ["fresh.example"]
    assert dict(preview.changed) == {"d2.example": ["relay_id", "relay_name"], "own.example": ["quota_messages"]}
    assert await snapshot(many) == before
    done = await csvio.run(many, actor, edited, apply=True)
    assert done.as_dict() == preview.as_dict()
    fresh = await domains.get(many, "fresh.example")
    assert (fresh.enabled, fresh.include_subdomains, fresh.recipients, fresh.owner_id, fresh.queue_lifetime) == \
        (False, True, "listed", (await users.get(many, "olga")).id, 12 * 3600)


async def test_csv_import_is_all_or_nothing_with_every_problem_named(many, actor) -> None:
    before = await snapshot(many)
    text = ("name,relay,enabled,quota_bytes,owner\n"
            "ok.example,new,yes,,\n"
            "bad_name.example,new,yes,,\n"
            "d1.example,nowhere,yes,,\n"
            "d2.example,,maybe,,\n"
            "d3.example,,,-5,\n"
            "d4.example,,,,nobody\n"
            "brand-new.example,,,,\n"
            "ok.example,new,yes,,\n")
    with pytest.raises(csvio.CsvRefused) as caught:
        await csvio.run(many, actor, text, apply=True)
    problems = dict(caught.value.report.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9]
    assert "inner hyphens" in problems[3] and "'nowhere'" in problems[4] and "maybe" in problems[5]
    assert "quota_bytes" in problems[6] and "nobody" in problems[7] and "relay, a host" in problems[8]
    assert "twice" in problems[9]
    assert "nothing was imported" in str(caught.value)
    for bad in ("", "domain,relay\nx.example,old\n", "name,name\n", "name,relay\nx.example\n"):
        with pytest.raises(InvalidInput):
            await csvio.run(many, actor, bad, apply=True)
    assert await snapshot(many) == before


async def test_csv_cells_a_spreadsheet_would_run_are_escaped_and_read_back(many, actor) -> None:
    await domains.update(many, actor, "d1.example", paused=True, pause_reason="=HYPERLINK(\"http://x\")")
    page = await domains.search(many, q="d1", limit=None)
    text = csvio.export(page.domains, {})
    assert ',"\'=HYPERLINK(""http://x"")",' in text
    before = await snapshot(many)
    report = await csvio.run(many, actor, text, apply=True)
    assert (report.changed, report.unchanged) == ([], 1) and await snapshot(many) == before


async def test_csv_import_refuses_quotas_without_the_permission(many, actor) -> None:
    olga = (await users.get(many, "olga")).id
    text = "name,relay,quota_messages\nd0.example,old,5\n"
    with pytest.raises(csvio.CsvRefused, match="needs the permission domains"):
        await csvio.run(many, actor, text, apply=True, owner_id=olga, may_set_quota=False)
    # An export of their own read back (quota unchanged), and a new domain at the default: fine.
    ok = "name,relay,quota_messages\nd0.example,old,\nolga.example,old,\n"
    report = await csvio.run(many, actor, ok, apply=True, owner_id=olga, may_set_quota=False)
    assert report.added == ["olga.example"] and (await domains.get(many, "olga.example")).owner_id == olga
    with pytest.raises(csvio.CsvRefused, match="only your own"):
        await csvio.run(many, actor, "name,enabled\nd1.example,no\n", apply=True, owner_id=olga)
