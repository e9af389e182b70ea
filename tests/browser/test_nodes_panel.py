"""Two nodes over one database, in Chromium. The Queue page: both nodes' rows with a Node
column, and Flush on the other node's row asks that node (a flush_request row) instead of
running postqueue here. The dashboard: every node's lookupd in a Nodes table (this node's live
from its real lookupd, on PostgreSQL), with a warning for a node whose snapshot is stale."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.infra.config import Config
from mrod.operations import flushrequests, nodereports, queueread, queuestats, syncstatus
from mrod.operations.queueparse import DomainQueue
from tests.browser.test_domain_forms import in_thread
from tests.browser.test_panel import nav, sign_in, watch_console
from tests.data import seed_file_sync
from tests.harness import free_port

pytestmark = pytest.mark.browser


async def _readings(path: Path) -> None:
    async with db.opened(path) as conn:
        async with conn.execute("SELECT id FROM domain WHERE name = 'shop.example'") as cur:
            [(shop,)] = await cur.fetchall()
        for node, count in (("mx-a", 2), ("mx-b", 6)):
            report = queueread.QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={}, bad_lines=0,
                                       unknown_fields=[], read_at=db.now())
            q = DomainQueue("shop.example")
            q.messages, q.bytes, q.oldest = count, count * 1000, 1700000000
            report.rows[shop] = q
            await queuestats.write_stats(conn, report, node)


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


# -- the dashboard's Nodes table (issue 11 point 3) --------------------------------------------------


async def _node_rows(cfg: Config) -> None:
    """What the node status jobs of two nodes stored: mx-b cut off from the database for 5 min;
    mx-a's row is old too, but mx-a is the panel's own node, shown live from its lookupd's file."""
    async with db.opened(cfg.database) as conn:
        now = time.time()
        await nodereports.upsert(conn, "mx-a", now - 900, True, reported_at=now - 890)
        await nodereports.upsert(conn, "mx-b", now - 312, False, reported_at=now - 2)


def _cells(row) -> list[str]:
    return [row.locator("th").inner_text(), *(cell.inner_text() for cell in row.locator("td").all())]


def test_dashboard_lists_every_nodes_lookupd_and_warns_of_a_stale_one(pg_database, panel_server, chromium,
                                                                      tmp_path: Path) -> None:
    # (pg_database first: the session's PostgreSQL starts with asyncio.run, before Playwright's loop)
    cluster, name = pg_database
    server = panel_server(sections={
        "database": {"url": cluster.url(name), "password_file": str(cluster.password_file)},
        "node": {"name": "mx-a"}, "lookupd": {"socketmap": f"127.0.0.1:{free_port()}"}})
    cfg = configmod.load(server.config_path, env={})
    status_file = syncstatus.path_for(cfg)
    assert status_file is not None
    # This node's real lookupd (as `mrod serve` runs it beside the panel), writing its sync status.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    with open(tmp_path / "lookupd.log", "wb") as log:
        lookupd = subprocess.Popen(server.command("lookupd"), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while not syncstatus.read(status_file).connected:
            assert lookupd.poll() is None, (tmp_path / "lookupd.log").read_text()
            assert time.monotonic() < deadline, "lookupd never wrote its sync status"
            time.sleep(0.1)
        in_thread(asyncio.run, _node_rows(cfg))
        page = chromium.new_page()
        problems = watch_console(page)
        assert server.password is not None
        sign_in(page, server.url, "admin", server.password)
        section = page.get_by_role("region", name="Nodes")
        rows = section.locator("table.nodes tbody tr").all()
        assert [_cells(r)[0] for r in rows] == ["mx-a (this node)", "mx-b"]
        here, other = _cells(rows[0]), _cells(rows[1])
        assert re.fullmatch(r"\d\.\d s ago", here[1]) and here[2:] == ["yes", "live", "fresh"], here
        assert re.fullmatch(r"31\d s ago", other[1]) and other[2] == "no" and other[4] == "stale", other
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", other[3])
        warning = section.get_by_role("alert")
        assert warning.is_visible()
        assert re.fullmatch(r"Node mx-b: lookupd's routing snapshot is 31\d s stale \(database unreachable\):"
                            r" it answers Postfix from it\.", warning.inner_text().strip())
        assert problems == []
    finally:
        lookupd.terminate()
        lookupd.wait(15)
