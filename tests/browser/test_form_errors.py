"""A refused form marks every wrong field at once (docs/panel.md): the domain form filled
through the fields a person sees in real Chromium, several of them wrong in one submit;
nothing is written (checked through the CLI)."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_panel import nav, sign_in, watch_console

pytestmark = pytest.mark.browser


def marked(page) -> set[str]:
    """The fields the page marks wrong, by the ids of their visible messages."""
    return {e.get_attribute("id").removesuffix("-error") for e in page.locator(".field-error").all() if e.is_visible()}


def test_domain_form_marks_every_wrong_field_at_once(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Domains").click()
    page.get_by_role("link", name="Add a domain").first.click()

    # A bad name, no relay chosen, a quota that is no number: three messages in one answer.
    page.get_by_label("Domain name").fill("bad name!")
    page.get_by_label("Through a relay").check()
    page.get_by_label("Relay", exact=True).select_option("")
    page.get_by_label("Queue quota, messages").fill("-3")
    page.get_by_role("button", name="Add domain").click()
    assert marked(page) == {"name", "relay", "quota_messages"}
    assert page.get_by_label("Domain name").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Domain name").input_value() == "bad name!"       # kept for a retry

    # An empty name and a host route without a host and with a port out of range.
    page.get_by_label("Domain name").fill("")
    page.get_by_label("To its own primary host (override)").check()
    page.get_by_label("Host", exact=True).fill("")
    page.get_by_label("Port", exact=True).fill("70000")
    page.get_by_label("Queue quota, messages").fill("")
    page.get_by_role("button", name="Add domain").click()
    assert marked(page) == {"name", "host", "port"}
    assert json.loads(server.cli("domain", "list", "--json")) == []

    # Put right, it is added.
    page.get_by_label("Domain name").fill("shop.example")
    page.get_by_label("Through a relay").check()
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("status").first.inner_text() == "Domain shop.example added."
    assert [d["name"] for d in json.loads(server.cli("domain", "list", "--json"))] == ["shop.example"]
    assert problems == []
