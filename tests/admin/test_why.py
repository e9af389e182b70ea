"""The why, where the operator looks (issue 13.4): the domain page shows its DNS findings, the
mail queued for it, its primary's health and transitions; the dashboard sums them up with links;
the DNS checks page is paginated and filterable. Readings are stored by the operations modules'
own writers (checks.store, queuestats.write_stats, HealthMonitor.record, runs.record)."""

from __future__ import annotations

import re

import pytest

from mrod.bindimport import runs
from mrod.entities import domains, relays
from mrod.infra import db
from mrod.operations import checks, health, queueread, queuestats
from mrod.operations.queueparse import DomainQueue
from tests.data import SYSTEM



async def _readings(conn, cfg) -> None:
    await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    await relays.add(conn, SYSTEM, name="second", host="127.0.0.1", port=9)
    shop = await domains.add(conn, SYSTEM, "shop.example", relay="primary")
    await domains.add(conn, SYSTEM, "calm.example", relay="second")
    finding = checks.Finding("error", "no-mx", "shop.example has no MX records", "add MX records: MX 10 mail")
    await checks.store(conn, [checks.DomainCheck(shop.id, shop.name, [finding], db.now())], cfg.node.name)
    q = DomainQueue("shop.example")
    q.messages, q.bytes, q.oldest, q.last_reason = 3, 4096, 1_700_000_000, "connect to primary: Connection refused"
    report = queueread.QueueReport(domains={}, rows={shop.id: q}, messages=3, bytes=4096, queues={}, bad_lines=0,
                               unknown_fields=[], read_at=db.now())
    await queuestats.write_stats(conn, report, cfg.node.name)
    monitor = health.HealthMonitor(cfg)
    relay = {"id": shop.relay_id, "name": "primary"}
    for _ in range(cfg.health.down_after + 1):
        await monitor.record(conn, [(relay, health.Probe(False, None, None, "connection refused"))])
    async with db.transaction(conn):
        await runs.record(conn, SYSTEM, started_at=db.now(), finished_at=db.now(), duration_ms=5,
                          counts={"added": 7, "problems": 2}, messages=[])


async def test_domain_page_shows_findings_queue_and_primary(admin_panel, app_conn, panel_cfg) -> None:
    await _readings(app_conn, panel_cfg)
    status, page = await admin_panel.get("/domains/shop.example")
    assert status == 200
    assert "shop.example has no MX records" in page and "add MX records: MX 10 mail" in page
    assert re.search(r'data-queue="messages">3 \(4096 bytes\)', page)
    assert '<time datetime="2023-11-14T22:13:20Z">2023-11-14 22:13 UTC</time>' in page    # the oldest's arrival
    assert "connect to primary: Connection refused" in page
    assert 'name="back" value="domain"' in page                 # a flush button (admin holds queue)
    assert re.search(r'class="state down"[^>]*>down</span>', page)
    assert "unknown → <strong>down</strong>" in page             # the transition, from the audit log
    status, page = await admin_panel.get("/domains/calm.example")
    assert "Not checked yet" in page and "Nothing was waiting" in page and "has not been probed yet" in page


async def test_domain_page_without_queue_or_relay_permission(new_panel, make_user, app_conn, panel_cfg) -> None:
    await _readings(app_conn, panel_cfg)
    await make_user("dom", "domains")
    panel = await new_panel()
    await panel.login("dom")
    status, page = await panel.get("/domains/shop.example")
    assert status == 200 and "shop.example has no MX records" in page
    assert 'name="back"' not in page                             # no flush without the queue permission
    assert "connection refused" not in page                      # the probe's detail: relay holders only
    assert ">down</span>" in page


@pytest.mark.both_engines
async def test_dashboard_sums_up_with_links(admin_panel, app_conn, panel_cfg) -> None:
    await _readings(app_conn, panel_cfg)
    status, page = await admin_panel.get("/")
    assert status == 200
    down = re.search(r'data-tile="down" href="([^"]+)"><span class="num">1</span> primary down: primary;'
                     r' 1 never probed \(second\)<', page)
    assert down
    assert down.group(1) == "/relays"
    assert re.search(r'data-tile="queue" href="/queue"><span class="num">3</span> messages queued; oldest waits'
                     r' \d+d \d+h for shop.example', page)
    assert re.search(r'data-tile="dns-error" href="/dns\?status=error"><span class="num">1</span> DNS error;'
                     r' 1 domain not checked yet<', page)
    assert re.search(r'data-tile="dns-warning" href="/dns\?status=warning"><span class="num">0</span>', page)
    assert re.search(r'data-tile="bind" href="/bind-import"><span class="num">ok</span> last BIND import, '
                     r'<time datetime="[0-9TZ:-]+">[0-9-]+ [0-9:]+ UTC</time>: 7 added, 2 problems', page)


async def test_dashboard_shows_each_part_only_with_its_permission(new_panel, make_user, app_conn,
                                                                  panel_cfg) -> None:
    await _readings(app_conn, panel_cfg)
    await make_user("watcher", "queue")
    panel = await new_panel()
    await panel.login("watcher")
    _, page = await panel.get("/")
    assert 'data-tile="queue"' in page
    assert 'data-tile="down"' not in page and 'data-tile="dns-error"' not in page and 'data-tile="bind"' not in page


async def test_dns_page_is_paginated_filtered_and_owner_limited(new_panel, make_user, app_conn) -> None:
    owner = await make_user("olga", "domains_own")
    await make_user("dom", "domains")
    await relays.add(app_conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    results = []
    for i in range(60):
        d = await domains.add(app_conn, SYSTEM, f"d{i:02}.example", relay="primary",
                              owner_id=owner.id if i < 3 else None)
        level = ("error", "warning", None)[i % 3]
        found = [checks.Finding(level, "x", f"problem of d{i:02}", "fix it")] if level else []
        results.append(checks.DomainCheck(d.id, d.name, found, db.now()))
    await checks.store(app_conn, results, "mx1")
    panel = await new_panel()
    await panel.login("dom")
    status, page = await panel.get("/dns")
    assert status == 200 and "Page 1 of 3" in page and page.count("data-domain=") == 25
    assert page.index("d00.example") < page.index("d01.example")   # errors first
    _, page = await panel.get("/dns?page=3")
    assert "Page 3 of 3" in page and page.count("data-domain=") == 10
    _, page = await panel.get("/dns?page=99")                      # past the end: the last page
    assert "Page 3 of 3" in page
    _, page = await panel.get("/dns?status=warning")
    assert page.count("data-domain=") == 20 and "problem of d01" in page and "problem of d00" not in page
    _, page = await panel.get("/dns?q=d5&status=bogus")
    assert page.count("data-domain=") == 10
    mine = await new_panel()
    await mine.login("olga")
    _, page = await mine.get("/dns")
    assert page.count("data-domain=") == 3 and "d03.example" not in page


async def test_api_checks_paginated_filtered_and_owner_limited(client, make_user, app_conn) -> None:
    from mrod.entities import tokens

    owner = await make_user("olga", "domains_own")
    root = await make_user("root", admin=True)
    await relays.add(app_conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    results = []
    for i in range(5):
        d = await domains.add(app_conn, SYSTEM, f"d{i}.example", relay="primary", owner_id=owner.id if i < 2 else None)
        found = [checks.Finding("error", "no-mx", f"d{i}.example has no MX", "add MX")] if i % 2 == 0 else []
        results.append(checks.DomainCheck(d.id, d.name, found, db.now()))
    await checks.store(app_conn, results, "mx1")
    secret, _ = await tokens.create(app_conn, SYSTEM, root.id, "t")
    olga_secret, _ = await tokens.create(app_conn, SYSTEM, owner.id, "t")
    response = await client.get("/api/v1/checks?status=error&limit=2", headers={"Authorization": f"Bearer {secret}"})
    data = await response.json()
    assert data["total"] == 3 and [i["domain"] for i in data["items"]] == ["d0.example", "d2.example"]
    assert data["items"][0]["findings"] == [{"level": "error", "code": "no-mx", "message": "d0.example has no MX",
                                             "fix": "add MX"}]
    response = await client.get("/api/v1/checks?status=bad", headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 400 and (await response.json())["field"] == "status"
    response = await client.get("/api/v1/checks", headers={"Authorization": f"Bearer {olga_secret}"})
    assert [i["domain"] for i in (await response.json())["items"]] == ["d0.example", "d1.example"]
