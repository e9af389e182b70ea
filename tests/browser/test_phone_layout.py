"""The panel on a phone (390×844, real Chromium): no page scrolls sideways, no table hides a
column off screen or squeezes a cell into a narrow column (tables stack their rows), rows are
no taller than their content, the header stays short, each relay's health stays on screen,
next hops wrap only after a dot,
radio buttons and check boxes sit beside their labels. Each page is also photographed (into
the test's directory; the relays page, the domain list and a domain's "what Postfix is told"
into docs/screenshots/phone-*.png)."""

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


# Tables whose frame scrolls sideways (a column pushed off screen): their class names.
WIDE_TABLES_JS = """() => [...document.querySelectorAll('.table-wrap')]
  .filter(w => w.scrollWidth > w.clientWidth + 1).map(w => w.querySelector('table').className)"""

# Cells squeezed into a narrow column: [lines its text takes, lines it would need at the table's
# width, its first words] for each cell (or list item in one) that wraps into more lines than
# its text needs (+1 for a break at a word), e.g. a domain name broken at every hyphen.
SQUEEZED_JS = """() => {
  const out = [];
  for (const table of document.querySelectorAll('main table')) {
    const width = table.getBoundingClientRect().width - 24;
    for (const cell of table.querySelectorAll('tbody td, tbody th')) {
      if (!cell.getBoundingClientRect().height) continue;
      const units = cell.querySelectorAll('li').length ? [...cell.querySelectorAll('li')] : [cell];
      for (const unit of units) {
        let total = 0; const tops = [];
        const walker = document.createTreeWalker(unit, NodeFilter.SHOW_TEXT);
        let node;
        while ((node = walker.nextNode())) {
          if (!node.data.trim()) continue;
          const range = document.createRange(); range.selectNodeContents(node);
          for (const rect of range.getClientRects()) if (rect.width > 0) { total += rect.width; tops.push(rect.top); }
        }
        tops.sort((a, b) => a - b);
        const lines = tops.filter((t, i) => i === 0 || t > tops[i - 1] + 8).length;
        const needed = Math.ceil(total / width) + unit.querySelectorAll('br').length;
        if (lines > needed + 1) out.push([lines, needed, unit.innerText.slice(0, 60)]);
      }
    }
  }
  return out;
}"""
ROWS_JS = "() => [...document.querySelectorAll('table.stack > tbody > tr')].map(tr => tr.getBoundingClientRect().height)"
LINE_PX = 25          # one line of text in a stacked row, with its spacing


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
    heights: dict[str, int] = {}
    for path in paths:
        response = page.goto(server.url + path)
        assert response.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(tmp_path / f"phone{path.replace('/', '_') or '_'}.png"), full_page=True)
        assert width <= PHONE["width"], f"{path} scrolls sideways: {width}px wide"
        # No table hides columns off screen, and no row is taller than its content needs.
        assert page.evaluate(WIDE_TABLES_JS) == [], f"{path}: a table scrolls sideways"
        assert page.evaluate(SQUEEZED_JS) == [], f"{path}: cells squeezed into narrow columns"
        heights[path] = page.evaluate("document.documentElement.scrollHeight")
        # The header (brand, menu, sign-out) takes at most two short rows.
        assert page.locator("header.top").bounding_box()["height"] <= 90, path
    print("page heights at 390 px:", heights)
    # 30 domains: each row at most three short lines (name; route and state; recipients) — the
    # list was ~140 px a domain, its columns off screen.
    page.goto(server.url + "/domains")
    domain_rows = page.evaluate(ROWS_JS)
    assert len(domain_rows) == 30 and max(domain_rows) <= 3 * LINE_PX + 16, domain_rows
    page.locator("table.domains").scroll_into_view_if_needed()
    page.screenshot(path=str(REPO / "docs" / "screenshots" / "phone-domains.png"))

    # Relays: the Health column is on screen; the long next hop wraps only after a dot.
    page.goto(server.url + "/relays")
    health = page.locator("td[data-health=frankfurt] .state")
    box = health.bounding_box()
    assert health.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    hop = page.locator("code.nexthop").filter(has_text="frankfurt").first
    assert hop.inner_text() == f"[{LONG_HOST}]:2525"
    breaks = hop.evaluate(BREAKS_JS)
    assert breaks, "the long next hop wraps on a phone (else this test proves nothing)"
    assert all(pair[0] == "." or pair[1] == ":" for pair in breaks), breaks
    shot = REPO / "docs" / "screenshots" / "phone-relays.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000

    # What Postfix is told: every column on screen, each map's key whole (docs/screenshots/).
    page.goto(server.url + "/domains/a-fairly-long-shop-name-01.example")
    told = page.locator("table.told")
    for cell in told.locator("tbody td").all():
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], cell.inner_text()
    assert told.locator("tr[data-map=relay_recipients] code.answer").is_visible()
    told.scroll_into_view_if_needed()
    page.screenshot(path=str(REPO / "docs" / "screenshots" / "phone-told.png"))

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
