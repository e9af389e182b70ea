"""Outages and domain holds through the API: who may hold (queue permission; domains_own:
own domains only), the hold stored and lifted whatever the queue could do (no Postfix here:
the answer says the queue job applies it), and the outage figures of a relay and a domain."""

from __future__ import annotations

import pytest

from mrod.entities import domains, holds, relays
from mrod.infra import db
from mrod.operations import deliveries, outages
from tests.admin.test_api import _token
from tests.data import SYSTEM


@pytest.mark.both_engines
async def test_hold_release_and_outages_through_the_api(admin_panel, new_panel, make_user, app_conn,
                                                        panel_cfg) -> None:
    relay = await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    await domains.add(app_conn, SYSTEM, "example.com", relay="primary")
    await domains.add(app_conn, SYSTEM, "other.example", host="mx.other.example")
    async with db.transaction(app_conn):
        await outages.started(app_conn, panel_cfg.node.name, relay.id, "2026-12-01T10:00:00Z")
        await outages.ended(app_conn, panel_cfg.node.name, relay.id, "2026-12-01T10:30:00Z")
    client = admin_panel.client
    headers = {"Authorization": f"Bearer {await _token(admin_panel)}"}

    response = await client.post("/api/v1/domains/example.com/hold", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert body["held"] and body["hold"]["reason"] == "manual" and "queue" in body
    assert [h.domain for h in await holds.all_holds(app_conn)] == ["example.com"]

    shown = await (await client.get("/api/v1/domains/example.com/outages", headers=headers)).json()
    assert shown["hold"]["reason"] == "manual" and shown["relay"] == "primary" and shown["refused"] == []
    [outage] = shown["outages"]
    assert outage["duration_s"] == 1800 and outage["queued"] == 0
    relay_view = await (await client.get("/api/v1/relays/primary/outages", headers=headers)).json()
    assert [o["started_at"] for o in relay_view["outages"]] == ["2026-12-01T10:00:00Z"]
    no_relay = await (await client.get("/api/v1/domains/other.example/outages", headers=headers)).json()
    assert no_relay["outages"] == [] and no_relay["availability_7d"] is None

    response = await client.post("/api/v1/domains/example.com/release", headers=headers)
    assert (await response.json())["was_held"] is True
    assert await holds.all_holds(app_conn) == []
    assert (await client.post("/api/v1/domains/nowhere.example/hold", headers=headers)).status == 404

    # Refusals counted from Postfix's log show on the dashboard and in the domain's figures.
    line = ("postfix/relay/smtp[9]: ABCDEF1234: to=<gone@example.com>, relay=x[192.0.2.1]:25, delay=1,"
            " delays=0/0/0/1, dsn=5.1.1, status=bounced (host x[192.0.2.1] said: 550 5.1.1 unknown (in reply to"
            " RCPT TO command))")
    outcome = deliveries.parse(line)
    assert outcome is not None
    assert await deliveries.record(app_conn, panel_cfg.node.name, [outcome, outcome]) == {"example.com": 2}
    relay_page = (await admin_panel.get(f"/relays/{relay.id}"))[1]
    assert "<td data-label=\"Duration\">30 min 0 s</td>" in relay_page
    page = (await admin_panel.get("/"))[1]
    assert "2</span> messages refused by a primary after this backup accepted them; most for example.com" in page
    shown = await (await client.get("/api/v1/domains/example.com/outages", headers=headers)).json()
    assert [(r["domain"], r["refused"]) for r in shown["refused"]] == [("example.com", 2)]

    # Without the queue permission: refused, nothing held.
    await make_user("viewer", "domains")
    viewer = await new_panel()
    await viewer.login("viewer")
    viewer_headers = {"Authorization": f"Bearer {await _token(viewer)}"}
    assert (await viewer.client.post("/api/v1/domains/example.com/hold", headers=viewer_headers)).status == 403
    assert (await viewer.client.get("/api/v1/domains/example.com/outages", headers=viewer_headers)).status == 200
    assert await holds.all_holds(app_conn) == []
