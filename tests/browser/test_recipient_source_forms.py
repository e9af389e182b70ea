"""The Recipient sources page in real Chromium: the add form refuses a URL with a password
(beside its field, nothing added), adds a URL source, Sync now lists a domain's recipients,
a sync that would empty the list is held and shown, Accept applies it; the edit form saves.
Effects are checked through the CLI (`mrod recipient-source list --json`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from tests.browser.test_panel import nav, sign_in, watch_console

pytestmark = pytest.mark.browser

ANSWER: dict[str, Any] = {"body": []}


class _Export(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWER["body"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def export() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Export)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/people.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def sources_of(server) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(server.cli("recipient-source", "list", "--json"))}


def test_recipient_source_forms_sync_and_accept(panel_server, chromium, export) -> None:
    server = panel_server()
    server.cli("domain", "add", "shop.example", "--host", "mx.shop.example")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Recipient sources").click()
    page.get_by_role("link", name="Add a source").click()
    page.get_by_label("Name", exact=True).fill("hr")
    page.get_by_label("Kind").select_option("url")
    page.get_by_label("URL", exact=True).fill(export.replace("http://", "http://me:s3cret@"))
    page.get_by_role("button", name="Add source").click()
    assert "holds a password" in page.locator("#url-error").inner_text()
    assert sources_of(server) == {}
    page.get_by_label("URL", exact=True).fill(export)
    page.get_by_label("Format").select_option("json")
    page.get_by_role("button", name="Add source").click()
    assert page.get_by_role("status").first.inner_text().startswith("Recipient source hr added.")
    assert sources_of(server)["hr"]["url"] == export

    # The edit page's "Used by" form: an unknown domain is refused, then shop.example uses hr.
    page.get_by_role("link", name="hr", exact=True).click()
    page.get_by_label("Domain", exact=True).fill("nosuch.example")
    page.get_by_role("button", name="Set the source").click()
    assert "does not exist" in page.get_by_role("alert").first.inner_text()
    page.get_by_label("Domain", exact=True).fill("shop.example")
    page.get_by_label("Uses").select_option("this")
    page.get_by_role("button", name="Set the source").click()
    assert page.get_by_role("status").first.inner_text() == "Domain shop.example: recipient source hr."
    assert page.locator("[data-used-by]").inner_text() == "shop.example"
    assert sources_of(server)["hr"]["domains"] == ["shop.example"]
    nav(page, "Recipient sources").click()
    ANSWER["body"] = [{"email": "ann@shop.example"}, {"email": "bob@shop.example"}]
    page.get_by_role("button", name="Sync now hr").click()
    assert "2 address(es) in 1 domain(s)" in page.get_by_role("status").first.inner_text()
    row = page.locator('tr[data-source="hr"]')
    assert row.locator("[data-state]").inner_text() == "ok" and "shop.example (2)" in row.inner_text()
    assert json.loads(server.cli("recipient", "list", "shop.example", "--json")) == ["ann@shop.example",
                                                                                      "bob@shop.example"]

    ANSWER["body"] = []
    page.get_by_role("button", name="Sync now hr").click()
    assert "HELD" in page.get_by_role("alert").first.inner_text()
    assert row.locator("[data-state]").inner_text() == "held"
    assert "no address" in row.locator("[data-error]").inner_text()
    page.get_by_role("button", name="Accept the new list of hr").click()
    assert "2 removed" in page.get_by_role("status").first.inner_text()
    assert json.loads(server.cli("recipient", "list", "shop.example", "--json")) == []

    page.get_by_role("link", name="hr", exact=True).click()
    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Recipient source hr saved."
    assert sources_of(server)["hr"]["format"] == "csv"
    assert problems == []
