"""Recipient sources through the API and the panel's handlers: administrators only, bad values
refused with the field named and nothing added, sync and accept answered with the outcome."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from mrod.entities import domains, relays
from mrod.recipientsources import sources, spec
from tests.admin.test_api import _token
from tests.data import SYSTEM


@pytest.fixture
async def export():
    body = {"data": [f"u{i}@example.com" for i in range(5)]}

    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(body["data"]).encode())

    app = web.Application()
    app.router.add_get("/x.json", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield body, f"http://127.0.0.1:{runner.addresses[0][1]}/x.json"
    finally:
        await runner.cleanup()


@pytest.mark.both_engines
async def test_sources_through_the_api(admin_panel, app_conn, export) -> None:
    body, url = export
    await relays.add(app_conn, SYSTEM, name="primary", host="mx.example.net")
    await domains.add(app_conn, SYSTEM, "example.com", relay="primary")
    auth = {"Authorization": f"Bearer {await _token(admin_panel)}"}
    client = admin_panel.client
    bad = await client.post("/api/v1/recipient-sources", headers=auth,
                            json={"name": "hr", "kind": "url", "url": "http://me:pw@127.0.0.1/x"})
    assert bad.status == 400 and "password" in (await bad.json())["error"]
    unknown = await client.post("/api/v1/recipient-sources", headers=auth, json={"name": "hr", "kind": "url",
                                                                                  "url": url, "secret": "x"})
    assert unknown.status == 400
    assert (await (await client.get("/api/v1/recipient-sources", headers=auth)).json())["items"] == []
    made = await client.post("/api/v1/recipient-sources", headers=auth, json={"name": "hr", "kind": "url", "url": url})
    assert made.status == 201 and (await made.json())["state"] == "never synced"
    await sources.use_for_relay(app_conn, SYSTEM, "primary", "hr")
    synced = await client.post("/api/v1/recipient-sources/hr/sync", headers=auth)
    assert synced.status == 200 and (await synced.json())["per_domain"] == {"example.com": 5}
    body["data"] = []
    held = await client.post("/api/v1/recipient-sources/hr/sync", headers=auth)
    assert held.status == 502 and (await held.json())["held"]
    [row] = (await (await client.get("/api/v1/recipient-sources", headers=auth)).json())["items"]
    assert row["state"] == "held" and row["addresses"] == 5 and row["domains"] == ["example.com"]
    accepted = await client.post("/api/v1/recipient-sources/hr/accept", headers=auth)
    assert accepted.status == 200 and (await accepted.json())["removed"] == 5
    assert (await client.get("/api/v1/recipient-sources/nosuch", headers=auth)).status == 404
    assert (await client.delete("/api/v1/recipient-sources/hr", headers=auth)).status == 204


async def test_only_administrators_see_sources(new_panel, make_user) -> None:
    await make_user("ops", "relay", "domains")
    panel = await new_panel()
    assert (await panel.login("ops")).status == 303
    assert "Recipient sources" not in (await panel.get("/"))[1]
    assert (await panel.get("/recipient-sources"))[0] == 403
    status, _page, _ = await panel.post("/recipient-sources/new", {"name": "x", "kind": "url",
                                                                   "url": "https://x.example/a"})
    assert status == 403


async def test_panel_form_error_names_the_field(admin_panel, app_conn) -> None:
    status, page, _ = await admin_panel.post("/recipient-sources/new", {
        "name": "dir", "kind": "ldap", "url": "ldap://dir.example", "base": ""})
    assert status == 400 and "is required" in page
    assert await sources.list_all(app_conn) == []
    assert "Recipient sources" in (await admin_panel.get("/"))[1]


async def test_a_domain_or_relay_uses_a_source_through_the_api(admin_panel, app_conn) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="mx.example.net")
    await domains.add(app_conn, SYSTEM, "example.com", relay="primary")
    await domains.add(app_conn, SYSTEM, "example.org", relay="primary")
    await sources.add(app_conn, SYSTEM, spec.parse(
        {"name": "hr", "kind": "url", "url": "https://export.example/x"}))
    auth = {"Authorization": f"Bearer {await _token(admin_panel)}"}
    client = admin_panel.client
    hr = (await sources.get(app_conn, "hr")).id
    assert (await client.put("/api/v1/relays/primary/recipient-source", headers=auth,
                             json={"source": "hr"})).status == 200
    assert (await client.put("/api/v1/domains/example.org/recipient-source", headers=auth,
                             json={"source": "none"})).status == 200
    assert [d.name for d in await sources.fed_domains(app_conn, hr)] == ["example.com"]
    bad = await client.put("/api/v1/domains/example.org/recipient-source", headers=auth, json={"source": ""})
    assert bad.status == 400
    assert (await client.put("/api/v1/domains/example.org/recipient-source", headers=auth,
                             json={"source": "nosuch"})).status == 404
    assert (await client.put("/api/v1/relays/primary/recipient-source", headers=auth,
                             json={"source": "inherit"})).status == 400
    assert [d.name for d in await sources.fed_domains(app_conn, hr)] == ["example.com"]
    page = (await admin_panel.get("/domains/example.com"))[1]
    assert 'data-setting="recipient-source"' in page and ">hr</a>" in page and "not synced yet" in page
    assert 'data-setting="recipient-source"' not in (await admin_panel.get("/domains/example.org"))[1]
