"""`when_primary_up` through the API (domains and relays, JSON), the panel's bulk edit and the
CSV round trip (issue 20.1); a bad value is a 400 naming the field, nothing changed."""

from __future__ import annotations

from mrod.entities import csvio, domains, relays
from tests.admin.test_api import _token
from tests.data import SYSTEM


async def test_api_sets_and_refuses_modes(admin_panel, app_conn) -> None:
    headers = {"Authorization": f"Bearer {await _token(admin_panel)}"}
    client = admin_panel.client
    response = await client.post("/api/v1/relays", json={"name": "primary", "host": "mx1.example.net",
                                                         "when_primary_up": "defer"}, headers=headers)
    assert response.status == 201 and (await response.json())["when_primary_up"] == "defer"
    response = await client.patch("/api/v1/relays/primary", json={"when_primary_up": "inherit"}, headers=headers)
    assert response.status == 400 and (await response.json())["field"] == "when_primary_up"
    response = await client.post("/api/v1/domains", json={"name": "shop.example", "relay": "primary",
                                                          "when_primary_up": "accept"}, headers=headers)
    assert response.status == 201 and (await response.json())["when_primary_up"] == "accept"
    response = await client.patch("/api/v1/domains/shop.example", json={"when_primary_up": "never"}, headers=headers)
    assert response.status == 400 and (await response.json())["field"] == "when_primary_up"
    assert (await domains.get(app_conn, "shop.example")).when_primary_up == "accept"
    response = await client.patch("/api/v1/domains/shop.example", json={"when_primary_up": "inherit"}, headers=headers)
    assert response.status == 200 and (await response.json())["when_primary_up"] == "inherit"
    assert (await relays.get(app_conn, "primary")).when_primary_up == "defer"


async def test_bulk_edit_and_csv(admin_panel, app_conn) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    for name in ("a.example", "b.example", "c.example"):
        await domains.add(app_conn, SYSTEM, name, relay="primary")
    status, _, _ = await admin_panel.post("/domains/bulk-edit", [
        ("domain", "a.example"), ("domain", "b.example"), ("scope", "selected"), ("set_when_primary_up", "defer")])
    assert status == 303
    modes = {d.name: d.when_primary_up for d in (await domains.search(app_conn, limit=None)).domains}
    assert modes == {"a.example": "defer", "b.example": "defer", "c.example": "inherit"}
    status, page, _ = await admin_panel.post("/domains/bulk-edit", [
        ("domain", "c.example"), ("scope", "selected"), ("set_when_primary_up", "sometimes")])
    assert status == 400 and (await domains.get(app_conn, "c.example")).when_primary_up == "inherit"
    # CSV: the column exported, and an import that changes it.
    _, text = await admin_panel.get("/domains/export")
    header, *rows = text.splitlines()
    column = header.split(",").index("when_primary_up")
    assert [r.split(",")[column] for r in rows] == ["defer", "defer", "inherit"]
    edited = text.replace("c.example,primary,,,,,no,yes,no,accept_all,no,,,,accept,inherit",
                          "c.example,primary,,,,,no,yes,no,accept_all,no,,,,accept,accept")
    report = await csvio.run(app_conn, SYSTEM, edited, apply=True)
    assert report.changed == [("c.example", ["when_primary_up"])]
    assert (await domains.get(app_conn, "c.example")).when_primary_up == "accept"
