"""The panel on a phone (390×844, real Chromium): no page scrolls sideways, the header stays
short, the relays table keeps its Health column on screen, next hops wrap only after a dot,
radio buttons and check boxes sit beside their labels. Each page is also photographed (into
the test's directory; the relays page into docs/screenshots/phone-relays.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_panel import sign_in, watch_console

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
REPO = Path(__file__).resolve().parents[2]
LONG_HOST = "mx1.primary-datacenter-frankfurt.example.net"

# Where the text of an element wraps: the two characters either side of each line break.
BREAKS_JS = """el => {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const chars = [];
  let node;
  while ((node = walker.nextNode())) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + 1);
      chars.push([node.data[i], range.getBoundingClientRect().top]);
    }
  }
  const breaks = [];
  for (let i = 1; i < chars.length; i++) {
    if (chars[i][1] > chars[i - 1][1] + 2) breaks.push(chars[i - 1][0] + chars[i][0]);
  }
  return breaks;
}"""

# Each box and its label: (box right edge, label left edge, |top difference|).
BESIDE_JS = """row => {
  const box = row.querySelector('input').getBoundingClientRect();
  const text = row.querySelector('label').firstChild;
  const range = document.createRange();
  range.setStart(text, 0); range.setEnd(text, 1);             // the label's first line
  const label = range.getBoundingClientRect();
  return [box.right, label.left, Math.abs((box.top + box.bottom) / 2 - (label.top + label.bottom) / 2)];
}"""


def test_every_page_fits_a_phone(panel_server, chromium, tmp_path) -> None:
    server = panel_server()
    server.cli("relay", "add", "frankfurt", "--host", LONG_HOST, "--port", "2525", "--tls", "encrypt")
    server.cli("relay", "add", "dc2", "--host", "192.0.2.25")
    server.cli("domain", "import", "-", "--relay", "frankfurt",
               input="".join(f"a-fairly-long-shop-name-{i:02}.example\n" for i in range(30)))
    server.cli("domain", "set", "a-fairly-long-shop-name-01.example", "--recipients", "listed")
    server.cli("recipient", "add", "someone.with.a.long.name@a-fairly-long-shop-name-01.example")
    server.add_user("operator", "operator password", "domains", "relay", "usermgr", "logs", "blocklist", "queue")
    page = chromium.new_page()
    problems = watch_console(page)
    page.set_viewport_size(PHONE)
    page.goto(server.url + "/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    sign_in(page, server.url, "admin", server.password)
    relay_id = 1                    # frankfurt, the first relay
    paths = ["/", "/domains", "/domains/new", "/domains/a-fairly-long-shop-name-01.example",
             "/domains/a-fairly-long-shop-name-01.example/edit", "/domains/bulk", "/relays", "/relays/new",
             f"/relays/{relay_id}", "/users", "/users/new", "/users/2", "/profile", "/profile/two-factor", "/logs",
             "/blocklist", "/queue", "/bind-import"]
    for path in paths:
        response = page.goto(server.url + path)
        assert response.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / f"phone{path.replace('/', '_') or '_'}.png"), full_page=True)
        assert width <= PHONE["width"], f"{path} scrolls sideways: {width}px wide"
        # The header (brand, menu, sign-out) takes at most two short rows.
        assert page.locator("header.top").bounding_box()["height"] <= 90, path

    # Relays: the Health column is on screen; the long next hop wraps only after a dot.
    page.goto(server.url + "/relays")
    health = page.get_by_role("columnheader", name="Health").bounding_box()
    assert health["x"] >= 0 and health["x"] + health["width"] <= PHONE["width"]
    assert page.locator("td[data-health=frankfurt] .state").is_visible()
    hop = page.locator("code.nexthop").filter(has_text="frankfurt").first
    assert hop.inner_text() == f"[{LONG_HOST}]:2525"
    breaks = hop.evaluate(BREAKS_JS)
    assert breaks, "the long next hop wraps on a phone (else this test proves nothing)"
    assert all(pair[0] == "." or pair[1] == ":" for pair in breaks), breaks
    shot = REPO / "docs" / "screenshots" / "phone-relays.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000

    # Radio buttons and check boxes beside their labels, on one line with them.
    page.goto(server.url + "/domains/new")
    rows = page.locator("main .radio, main .check")
    assert rows.count() >= 5
    for index in range(rows.count()):
        row = rows.nth(index)
        if not row.is_visible():
            continue
        box_right, label_left, offset = row.evaluate(BESIDE_JS)
        assert label_left >= box_right and label_left - box_right < 24 and offset < 12, row.inner_text()
    assert problems == []
