"""The domain page says what the policy service answers at RCPT now and why (issue 20.1):
the mode while the primary is up against the primary's state as this node last probed it."""

from __future__ import annotations

import html

from mrod.entities import domains, relays
from mrod.operations import health
from tests.data import SYSTEM


def _said(page: str) -> str:
    start = page.index('data-told="at-rcpt"')
    return html.unescape(page[start:page.index("</p>", start)])


async def test_domain_page_says_what_happens_at_rcpt(admin_panel, app_conn, panel_cfg) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="127.0.0.1", port=9, when_primary_up="defer")
    await domains.add(app_conn, SYSTEM, "shop.example", relay="primary")
    await domains.add(app_conn, SYSTEM, "keep.example", relay="primary", when_primary_up="accept")
    await domains.add(app_conn, SYSTEM, "own.example", mx=True, when_primary_up="defer")
    said = _said((await admin_panel.get("/domains/shop.example"))[1])
    assert "<strong>accept</strong>" in said and "never probed on this node" in said
    assert "relay primary's setting" in said
    monitor = health.HealthMonitor(panel_cfg)
    relay = {"id": (await relays.get(app_conn, "primary")).id, "name": "primary"}
    for _ in range(panel_cfg.health.up_after):
        await monitor.record(app_conn, [(relay, health.Probe(True, 12.0, True, "220 ok"))])
    status, page = await admin_panel.get("/domains/shop.example")
    said = _said(page)
    assert status == 200 and "<strong>defer</strong>" in said and "the primary is up on this node since" in said
    assert "postmaster@ and [policy] exempt_networks (none set) are accepted" in said
    assert 'data-setting="when-primary-up">inherit<' in page
    said = _said((await admin_panel.get("/domains/keep.example"))[1])
    assert "<strong>accept</strong>" in said and "whether or not the primary is up (its own setting)" in said
    said = _said((await admin_panel.get("/domains/own.example"))[1])
    assert "<strong>accept</strong>" in said and "no relay is probed" in said
    for _ in range(panel_cfg.health.down_after):
        await monitor.record(app_conn, [(relay, health.Probe(False, None, None, "connection refused"))])
    said = _said((await admin_panel.get("/domains/shop.example"))[1])
    assert "<strong>accept</strong>" in said and "the primary is down on this node since" in said
