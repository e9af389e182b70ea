"""The Trust kit page (issue 20.4) in Chromium: a user with the permission relay opens it from
the menu, reads the snippet of each format — this node's addresses from its config, another
node's from its status row, a node without any named as such — and what is shown is what
`mrod trust-kit` prints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mrod.infra import db
from mrod.operations import nodereports
from tests.browser.test_domain_forms import in_thread
from tests.browser.test_panel import nav, sign_in, watch_console

pytestmark = pytest.mark.browser


async def _other_nodes(path: Path) -> None:
    async with db.opened(path) as conn:
        await nodereports.upsert(conn, "mx-b", None, False, public_addresses=("198.51.100.0/28",))
        await nodereports.upsert(conn, "mx-c", None, False)


def test_the_trust_kit_page_shows_each_format(panel_server, chromium) -> None:
    server = panel_server(sections={"node": {"name": "mx-a", "public_addresses": ["192.0.2.10", "2001:db8::10"]}})
    in_thread(asyncio.run, _other_nodes(server.database))
    server.add_user("ops", "ops password!", "relay")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "ops", "ops password!")
    nav(page, "Trust kit").click()
    kit = page.locator("pre#kit")
    assert kit.inner_text().startswith("# mrod trust kit (rspamd 3.x)")
    assert '"192.0.2.10/32",   # node mx-a' in kit.inner_text()
    assert "# node mx-c: NO [node] public_addresses set" in kit.inner_text()
    rows = page.locator("table.nodes tbody tr")
    assert [r.locator("td").first.inner_text() for r in rows.all()] == ["mx-a", "mx-b", "mx-c"]
    assert rows.nth(2).locator("td").nth(1).inner_text() == "not set"
    page.get_by_role("navigation", name="Formats").get_by_role("link", name="postscreen").click()
    page.wait_for_url("**/trust-kit?format=postscreen")
    lines = [line for line in kit.inner_text().splitlines() if not line.startswith("#")]
    assert lines == ["192.0.2.10/32 permit", "2001:db8::10/128 permit", "198.51.100.0/28 permit"]
    page.get_by_role("navigation", name="Formats").get_by_role("link", name="spf").click()
    page.wait_for_url("**/trust-kit?format=spf")
    assert kit.inner_text().splitlines()[-1] == \
        '@ IN TXT "v=spf1 mx ip4:192.0.2.10 ip6:2001:db8::10 ip4:198.51.100.0/28 ~all"'
    assert problems == []
