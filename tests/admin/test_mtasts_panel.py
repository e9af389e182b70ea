"""The MTA-STS page, its API and the domain page's line: the cache as the refresh job wrote it
(mrod.mtasts.cache.save), owner-limited for domains_own holders."""

from __future__ import annotations

from mrod.entities import domains, tokens
from mrod.mtasts import cache
from tests.data import SYSTEM

ANSWER = "secure match=mail.shop.example servername=hostname"


async def _cached(conn, owner_id: int) -> None:
    await domains.add(conn, SYSTEM, "shop.example", mx=True, owner_id=owner_id)
    await domains.add(conn, SYSTEM, "calm.example", mx=True)
    await domains.add(conn, SYSTEM, "quiet.example", mx=True)
    await cache.save(conn, cache.Cached("shop.example", "1", "enforce", ("mail.shop.example",), 86400,
                                        "2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z", False, ANSWER,
                                        "2026-12-07T00:00:00Z", None))
    await cache.save(conn, cache.Cached("calm.example", "7", "testing", ("*.calm.example",), 3600,
                                        "2026-12-07T00:00:00Z", "2026-12-07T01:00:00Z", False, None,
                                        "2026-12-07T00:00:00Z", "HTTP 500; the cached policy stands"))
    await cache.save(conn, cache.Cached("quiet.example", None, None, (), None, None, None, False, None,
                                        "2026-12-07T00:00:00Z", None))


async def test_page_lists_what_domains_publish_owner_limited(new_panel, make_user, app_conn) -> None:
    owner = await make_user("olga", "domains_own")
    await make_user("dom", "domains")
    await _cached(app_conn, owner.id)
    panel = await new_panel()
    await panel.login("dom")
    status, page = await panel.get("/mta-sts")
    assert status == 200 and page.count("data-domain=") == 2      # quiet.example publishes nothing
    assert ANSWER in page and "HTTP 500; the cached policy stands" in page and "3 domains looked up" in page
    _, page = await panel.get("/domains/shop.example")
    assert "policy <strong>enforce</strong>" in page and ANSWER in page
    _, page = await panel.get("/dns")
    assert 'href="/mta-sts"' in page
    mine = await new_panel()
    await mine.login("olga")
    _, page = await mine.get("/mta-sts")
    assert page.count("data-domain=") == 1 and "calm.example" not in page


async def test_api_gives_every_looked_up_domain(client, make_user, app_conn) -> None:
    owner = await make_user("olga", "domains_own")
    root = await make_user("root", admin=True)
    await _cached(app_conn, owner.id)
    secret, _ = await tokens.create(app_conn, SYSTEM, root.id, "t")
    olga_secret, _ = await tokens.create(app_conn, SYSTEM, owner.id, "t")
    response = await client.get("/api/v1/mta-sts", headers={"Authorization": f"Bearer {secret}"})
    data = await response.json()
    assert [d["domain"] for d in data] == ["calm.example", "quiet.example", "shop.example"]
    assert data[2]["answer"] == ANSWER and data[2]["mx"] == ["mail.shop.example"] and data[2]["dane"] is False
    response = await client.get("/api/v1/mta-sts", headers={"Authorization": f"Bearer {olga_secret}"})
    assert [d["domain"] for d in await response.json()] == ["shop.example"]
