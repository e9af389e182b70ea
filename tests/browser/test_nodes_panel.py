"""The Queue page with two nodes over one database, in Chromium: both nodes' rows with a Node
column, and Flush on the other node's row asks that node (a flush_request row) instead of
running postqueue here."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mrod.infra import db
from mrod.operations import flushrequests, queue
from mrod.operations.queueparse import DomainQueue
from tests.browser.test_domain_forms import in_thread
from tests.browser.test_panel import nav, sign_in, watch_console
from tests.data import seed_file_sync


async def _readings(path: Path) -> None:
    async with db.opened(path) as conn:
        async with conn.execute("SELECT id FROM domain WHERE name = 'shop.example'") as cur:
            [(shop,)] = await cur.fetchall()
        for node, count in (("mx-a", 2), ("mx-b", 6)):
            report = queue.QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={}, bad_lines=0,
                                       unknown_fields=[], read_at=db.now())
            q = DomainQueue("shop.example")
            q.messages, q.bytes, q.oldest = count, count * 1000, 1700000000
            report.rows[shop] = q
            await queue.write_stats(conn, report, node)


async def _pending(path: Path) -> list[dict[str, object]]:
    async with db.opened(path) as conn:
        return await flushrequests.pending(conn)


def test_flush_on_another_nodes_row_asks_that_node(panel_server, chromium) -> None:
    server = panel_server(sections={"node": {"name": "mx-a"}})
    in_thread(seed_file_sync, server.database, relays=[{"name": "primary", "host": "127.0.0.1", "port": 9}],
              domains=[{"name": "shop.example", "relay": "primary"}])
    in_thread(asyncio.run, _readings(server.database))
    server.add_user("ops", "ops password!", "queue", "domains")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "ops", "ops password!")
    nav(page, "Queue").click()
    table = page.locator("table.queue")
    assert table.locator("th").first.inner_text() == "Node"
    assert [row.locator("td").first.inner_text() for row in table.locator("tbody tr").all()] == ["mx-b", "mx-a"]
    page.get_by_role("button", name="Flush shop.example on mx-b").click()
    assert page.get_by_role("status").first.inner_text().startswith(
        "shop.example: flush requested on node mx-b: it acts at its next queue reading")
    assert "Flushes waiting for their node: shop.example on mx-b (asked by ops)" in page.content()
    assert [(r["node"], r["domain"]) for r in in_thread(asyncio.run, _pending(server.database))] == [
        ("mx-b", "shop.example")]
    assert problems == []
