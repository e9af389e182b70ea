"""The relays list and a relay's page show its health as the probes saw it — up, down or
unknown, when last probed, the latency — recorded by mrod.operations.health's own writer, shown only
for relays the user may see, with the probe's text (a remote server's banner) escaped."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from mrod.operations import health
from mrod.entities import relays, tokens
from mrod.operations.health import HealthMonitor, Probe
from tests.data import SYSTEM

HOSTILE_BANNER = "<script>\"x'</script>"


async def _probed(conn: Any, cfg: Any, relay: relays.Relay, probe: Probe, times: int = 1) -> dict[str, Any]:
    """Record probes as `mrod serve`'s health job does; the relay's health row afterwards."""
    monitor = HealthMonitor(cfg)
    for _ in range(times):
        await monitor.record(conn, [({"id": relay.id, "name": relay.name}, probe)])
    [row] = [r for r in await health.status(conn) if r["id"] == relay.id]
    return row


def _stamp(value: str) -> str:
    """The panel's one date format: ISO 8601 date and time in UTC, to the minute."""
    return value[:16].replace("T", " ") + " UTC"


def _row(page: str, name: str) -> str:
    """The relays table's row of one relay, tags dropped, unescaped."""
    found = re.search(rf'<tr>\s*<td[^>]*><a href="/relays/\d+">{re.escape(name)}</a></td>(.*?)</tr>', page, re.DOTALL)
    assert found, f"no row for {name}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1).replace("<wbr>", ""))).split())


@pytest.mark.both_engines
async def test_relays_list_and_page_show_health_as_probed(admin_panel, app_conn, panel_cfg) -> None:
    up = await relays.add(app_conn, SYSTEM, name="alpha", host="mx1.example.net")
    down = await relays.add(app_conn, SYSTEM, name="bravo", host="mx2.example.net")
    await relays.add(app_conn, SYSTEM, name="charlie", host="mx3.example.net")          # never probed
    up_row = await _probed(app_conn, panel_cfg, up, Probe(True, 12.5, True, "220 mx1.example.net ESMTP"))
    down_row = await _probed(app_conn, panel_cfg, down, Probe(False, None, None, "Connection refused"),
                             times=panel_cfg.health.down_after)
    assert (up_row["state"], down_row["state"]) == ("up", "down")

    status, page = await admin_panel.get("/relays")
    assert status == 200
    assert '<span class="state up" title="220 mx1.example.net ESMTP">up</span>' in page
    assert _row(page, "alpha").startswith(f"up [mx1.example.net]:25 smtp may {_stamp(up_row['last_probe_at'])} 12.5 ms")
    assert '<span class="state down" title="Connection refused">down</span>' in page
    assert _row(page, "bravo").startswith(f"down [mx2.example.net]:25 smtp may {_stamp(down_row['last_probe_at'])} 0")
    assert _row(page, "charlie").startswith("unknown [mx3.example.net]:25 smtp may never 0")

    page = (await admin_panel.get(f"/relays/{down.id}"))[1]
    start = page.index('<h2 id="health-heading">')
    section = page[start:page.index("</section>", start)]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section)).split())
    assert text.startswith("Health: down")
    assert f"Since {_stamp(down_row['since'])}" in text
    assert f"Last probe {_stamp(down_row['last_probe_at'])} (failed)" in text
    assert "Latency —" in text
    assert "Detail Connection refused" in text
    page = (await admin_panel.get(f"/relays/{up.id}"))[1]
    assert 'Health: <span class="state up"' in page
    assert "12.5 ms" in page
    assert "STARTTLS</dt><dd>offered" in page
    charlie = await relays.get(app_conn, "charlie")
    page = (await admin_panel.get(f"/relays/{charlie.id}"))[1]
    assert 'Health: <span class="state unknown">unknown</span>' in page
    assert "Last probe</dt><dd>never" in page


async def test_relay_own_sees_the_health_of_its_own_relays_only(new_panel, make_user, app_conn, panel_cfg) -> None:
    me = await make_user("ops", "relay_own")
    mine = await relays.add(app_conn, SYSTEM, name="mine", host="mx1.example.net", owner_id=me.id)
    theirs = await relays.add(app_conn, SYSTEM, name="theirs", host="mx2.example.net")
    await _probed(app_conn, panel_cfg, mine, Probe(True, 3.5, False, "220 mine ESMTP"))
    await _probed(app_conn, panel_cfg, theirs, Probe(True, 99.25, True, "220 secret-primary.internal ESMTP"))
    panel = await new_panel()
    assert (await panel.login("ops")).status == 303
    page = (await panel.get("/relays"))[1]
    assert _row(page, "mine").startswith("up [mx1.example.net]:25 smtp may")
    assert "3.5 ms" in page
    assert "secret-primary.internal" not in page and "99.25" not in page and "theirs" not in page
    status, page = await panel.get(f"/relays/{theirs.id}")
    assert status == 403 and "secret-primary.internal" not in page
    page = (await panel.get(f"/relays/{mine.id}"))[1]
    assert 'Health: <span class="state up" title="220 mine ESMTP">up</span>' in page


async def test_a_probe_detail_is_escaped(admin_panel, app_conn, panel_cfg) -> None:
    relay = await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    # What a primary says in its banner is stored as the probe's detail: a remote party's text.
    await _probed(app_conn, panel_cfg, relay, Probe(True, 1.0, None, HOSTILE_BANNER))
    escaped = "&lt;script&gt;&#34;x&#39;&lt;/script&gt;"
    for path in ("/relays", f"/relays/{relay.id}"):
        page = (await admin_panel.get(path))[1]
        assert "<script>" not in page and escaped in page, path


async def test_the_api_gives_each_relay_its_health(new_panel, make_user, app_conn, panel_cfg) -> None:
    me = await make_user("ops", "relay_own")
    mine = await relays.add(app_conn, SYSTEM, name="mine", host="mx1.example.net", owner_id=me.id)
    theirs = await relays.add(app_conn, SYSTEM, name="theirs", host="mx2.example.net")
    await relays.add(app_conn, SYSTEM, name="fresh", host="mx3.example.net", owner_id=me.id)   # never probed
    row = await _probed(app_conn, panel_cfg, mine, Probe(False, None, None, "Connection refused"),
                        times=panel_cfg.health.down_after)
    await _probed(app_conn, panel_cfg, theirs, Probe(True, 7.0, True, "220 secret-primary.internal ESMTP"))
    secret, _ = await tokens.create(app_conn, SYSTEM, me.id, "monitoring")
    headers = {"Authorization": f"Bearer {secret}"}
    panel = await new_panel()
    response = await panel.client.get("/api/v1/relays", headers=headers)
    listed = {r["name"]: r["health"] for r in await response.json()}
    assert response.status == 200 and set(listed) == {"mine", "fresh"}
    assert listed["mine"] == {"state": "down", "since": row["since"], "last_probe_at": row["last_probe_at"],
                              "last_ok": False, "last_latency_ms": None, "starttls": None,
                              "last_detail": "Connection refused"}
    assert listed["fresh"]["state"] == "unknown" and listed["fresh"]["last_probe_at"] is None
    response = await panel.client.get(f"/api/v1/relays/{mine.id}", headers=headers)
    assert response.status == 200 and (await response.json())["health"] == listed["mine"]
    response = await panel.client.get(f"/api/v1/relays/{theirs.id}", headers=headers)
    assert response.status == 403 and "secret-primary" not in await response.text()
