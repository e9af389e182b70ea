"""The mode while the primary is up (issue 20.1), set through the relay and domain forms in real
Chromium; the effect checked through the CLI, and the domain page saying what RCPT gets."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_panel import sign_in, watch_console

pytestmark = pytest.mark.browser


def test_relay_and_domain_forms_set_the_mode(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    server.cli("domain", "add", "shop.example", "--relay", "primary")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)

    page.goto(server.url + "/relays")
    page.get_by_role("link", name="primary", exact=True).click()
    page.get_by_label("While this primary is up").select_option("defer")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Relay primary saved."
    [relay] = json.loads(server.cli("relay", "list", "--json"))
    assert relay["when_primary_up"] == "defer"

    page.goto(server.url + "/domains/shop.example")
    told = page.locator("[data-told=at-rcpt]").inner_text()
    assert "accept" in told and "never probed on this node" in told and "relay primary's setting" in told
    page.get_by_role("link", name="Edit").click()
    assert page.get_by_label("While the primary is up").input_value() == "inherit"
    page.get_by_label("While the primary is up").select_option("accept")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Domain shop.example saved."
    shown = json.loads(server.cli("domain", "show", "shop.example", "--json"))["domain"]
    assert shown["when_primary_up"] == "accept"
    assert page.locator("[data-setting=when-primary-up]").inner_text() == "accept"
    assert "whether or not the primary is up (its own setting)" in page.locator("[data-told=at-rcpt]").inner_text()
    assert problems == []
