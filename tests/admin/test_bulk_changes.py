"""Bulk edit, CSV export and import through the panel's handlers and the API (issue 13.5): the
same core functions (mrod.entities.domainbulk, csvio), all or nothing, owner limits kept."""

from __future__ import annotations

import html
import re

import pytest

from mrod.entities import domains, relays, tokens
from tests.core.test_entities import snapshot
from tests.data import SYSTEM



async def _world(conn, make_user) -> int:
    olga = await make_user("olga", "domains_own")
    await relays.add(conn, SYSTEM, name="old", host="mx1.example.net")
    await relays.add(conn, SYSTEM, name="new", host="mx2.example.net")
    for i in range(5):
        await domains.add(conn, SYSTEM, f"d{i}.example", relay="old", owner_id=olga.id if i == 0 else None)
    return olga.id


async def test_bulk_edit_selected_and_all_matching(admin_panel, app_conn, make_user) -> None:
    await _world(app_conn, make_user)
    status, _, response = await admin_panel.post("/domains/bulk-edit", [
        ("domain", "d1.example"), ("domain", "d2.example"), ("scope", "selected"), ("set_route", "relay:new"),
        ("set_recipients", "listed"), ("set_paused", "yes"), ("pause_reason", "moving"), ("set_subdomains", "yes"),
        ("q", "d")])
    assert status == 303 and response.headers["Location"] == "/domains?q=d"
    d1 = await domains.get(app_conn, "d1.example")
    assert (d1.relay_name, d1.recipients, d1.paused, d1.pause_reason, d1.include_subdomains) == \
        ("new", "listed", True, "moving", True)
    assert (await domains.get(app_conn, "d3.example")).relay_name == "old"
    _, page = await admin_panel.get("/domains?q=d")
    assert "2 domain(s) changed." in page
    status, _, _ = await admin_panel.post("/domains/bulk-edit", {"scope": "filter", "relay": "old",
                                                                 "set_enabled": "no"})
    assert status == 303
    assert [d.enabled for d in (await domains.search(app_conn, limit=None)).domains] == [False, True, True, False, False]


async def test_bulk_edit_refused_changes_nothing(admin_panel, new_panel, app_conn, make_user) -> None:
    await _world(app_conn, make_user)
    olga = await new_panel()
    await olga.login("olga")                # (before the snapshot: a sign-in is audited)
    before = await snapshot(app_conn)
    status, page, _ = await admin_panel.post("/domains/bulk-edit", {"domain": "d1.example"})
    assert status == 400 and "Nothing was changed: nothing to change" in page
    status, page, _ = await admin_panel.post("/domains/bulk-edit", {"scope": "selected", "set_enabled": "no"})
    assert status == 400 and "no domain is selected" in page
    # Several things wrong at once: all said in one answer.
    status, page, _ = await admin_panel.post("/domains/bulk-edit", {"scope": "selected", "set_paused": "yes",
                                                                    "pause_reason": "x" * 300})
    assert status == 400 and "no domain is selected; pause reason: must be one line of at most 200" in page
    status, page, _ = await admin_panel.post("/domains/bulk-edit", [("domain", "d1.example"),
                                                                    ("domain", "gone.example"),
                                                                    ("set_enabled", "no")])
    assert status == 400 and "gone.example" in page and 'value="d1.example" form="bulk-edit"' in page
    status, page, _ = await olga.post("/domains/bulk-edit", [("domain", "d0.example"), ("domain", "d1.example"),
                                                             ("set_enabled", "no")])
    assert status == 400 and "only your own domains" in page
    assert await snapshot(app_conn) == before
    status, _, _ = await olga.post("/domains/bulk-edit", {"scope": "filter", "set_enabled": "no"})
    assert status == 303 and not (await domains.get(app_conn, "d0.example")).enabled
    assert (await domains.get(app_conn, "d1.example")).enabled


@pytest.mark.both_engines
async def test_csv_export_preview_and_import(admin_panel, app_conn, make_user) -> None:
    await _world(app_conn, make_user)
    response = await admin_panel.client.get("/domains/export?relay=old&q=d1")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert 'filename="domains.csv"' in response.headers["Content-Disposition"]
    text = await response.text()
    assert text.splitlines()[1:] == ["d1.example,old,,,,,no,yes,no,accept_all,no,,,,accept,inherit,,manual,"]
    before = await snapshot(app_conn)
    edited = text.replace("d1.example,old,", "d1.example,new,") + "n1.example,new,,,,,,,,listed,,,,,,,,,\n"
    status, page, _ = await admin_panel.post("/domains/import", {"action": "preview", "csv": edited})
    assert status == 200
    assert "Preview" in page
    assert "<li>n1.example</li>" in page
    assert "<li>relay: <del>old</del> → <ins>new</ins></li>" in page
    assert await snapshot(app_conn) == before
    status, page, _ = await admin_panel.post("/domains/import", {"action": "apply", "csv": edited + "bad,x\n"})
    assert status == 400
    assert "Nothing was imported: line 4: 2 values for 19 columns" in page
    status, page, _ = await admin_panel.post("/domains/import", {"action": "apply", "csv": edited + "d9.example" + "," * 18 + "\n"})
    assert status == 400
    assert "1 problem(s); nothing was imported." in page
    assert "d9.example" in page
    assert await snapshot(app_conn) == before
    status, _, _ = await admin_panel.post("/domains/import", {"action": "apply", "csv": edited})
    assert status == 303
    assert (await domains.get(app_conn, "d1.example")).relay_name == "new"
    assert (await domains.get(app_conn, "n1.example")).recipients == "listed"


async def test_api_bulk_update_export_and_import(client, app_conn, make_user) -> None:
    olga_id = await _world(app_conn, make_user)
    root = await make_user("root", admin=True)
    secret, _ = await tokens.create(app_conn, SYSTEM, root.id, "t")
    olga_secret, _ = await tokens.create(app_conn, SYSTEM, olga_id, "t")
    auth = {"Authorization": f"Bearer {secret}"}
    response = await client.post("/api/v1/domains/bulk-update", headers=auth, json={
        "domains": ["d1.example", "d2.example"], "set": {"relay": "new", "paused": True}})
    assert response.status == 200 and (await response.json()) == {"changed": ["d1.example", "d2.example"],
                                                                  "unchanged": []}
    response = await client.post("/api/v1/domains/bulk-update", headers=auth, json={
        "filter": {"relay": "old"}, "set": {"recipients": "sometimes"}})
    assert response.status == 400 and "recipients" in (await response.json())["error"]
    response = await client.post("/api/v1/domains/bulk-update", headers={"Authorization": f"Bearer {olga_secret}"},
                                 json={"domains": ["d0.example"], "set": {"quota_messages": 5}})
    assert response.status == 403
    response = await client.get("/api/v1/domains/export?relay=new", headers=auth)
    text = await response.text()
    assert response.status == 200 and [line.split(",")[0] for line in text.splitlines()] == \
        ["name", "d1.example", "d2.example"]
    body = "name,paused\nd1.example,no\nfresh.example,\n"
    response = await client.post("/api/v1/domains/import", headers=auth, data=body)
    report = await response.json()
    assert response.status == 400 and report["problems"][0]["line"] == 3 and report["added"] == []
    body = "name,relay,paused\nd1.example,,no\nfresh.example,new,\n"
    response = await client.post("/api/v1/domains/import", headers=auth, data=body)
    assert (await response.json())["applied"] is False
    assert (await domains.get(app_conn, "d1.example")).paused
    response = await client.post("/api/v1/domains/import?apply=true", headers=auth, data=body)
    report = await response.json()
    assert report["applied"] and report["added"] == ["fresh.example"]
    assert report["changed"] == [{"domain": "d1.example", "fields": ["paused"]}]
    assert (await domains.get(app_conn, "fresh.example")).source == "api"


async def test_domains_own_imports_only_their_own_and_no_quotas(new_panel, app_conn, make_user) -> None:
    await _world(app_conn, make_user)
    olga = await new_panel()
    await olga.login("olga")
    before = await snapshot(app_conn)
    status, page, _ = await olga.post("/domains/import", {"action": "apply",
                                                          "csv": "name,quota_bytes\nd0.example,100\n"})
    assert status == 400 and "needs the permission domains" in page
    status, page, _ = await olga.post("/domains/import", {"action": "apply", "csv": "name,enabled\nd1.example,no\n"})
    assert status == 400 and "only your own domains" in page
    assert await snapshot(app_conn) == before
    response = await olga.client.get("/domains/export")
    assert [line.split(",")[0] for line in (await response.text()).splitlines()] == ["name", "d0.example"]


async def test_csv_preview_and_bulk_audit_read_in_words(admin_panel, app_conn, make_user) -> None:
    """The preview says each change as field: before → after (the relay by name, the owner by
    user name, an empty quota as the default), never a column name like relay_id; the audit
    log shows a bulk change's per-domain rows in words, never Python's {'q': 'shop'} or True."""
    olga = await _world(app_conn, make_user)
    status, page, _ = await admin_panel.post("/domains/import", {
        "action": "preview", "csv": "name,relay,paused,quota_messages,owner\nd1.example,new,yes,7,olga\n"})
    assert status == 200 and olga
    [item] = re.findall(r'<li data-domain="d1.example">.*?</ul></li>', page, re.S)
    shown = [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<ul class=\"diff\">(.*)</ul>", item,
                                                                           re.S)[0].split("</li>") if li.strip()]
    assert shown == ["relay: old → new", "owner: — → olga", "paused: no → yes",
                     "queue quota (messages): default → 7"], shown
    assert "relay_id" not in page and "relay_name" not in page

    status, _, _ = await admin_panel.post("/domains/bulk-edit", {"scope": "filter", "q": "d2", "set_enabled": "no"})
    assert status == 303
    # A bulk change is audited per domain, as `domain set` audits one: its row reads in words.
    _, page = await admin_panel.get("/logs?action=update&key=d2.example")
    table = page.split("<table", 1)[1]
    assert "{" not in table
    assert "True" not in table
    assert "False" not in table
    changes = [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r'<ul class="diff">(.*?)</ul>', table, re.S)]
    assert changes == ["enabled: yes → no"], changes
