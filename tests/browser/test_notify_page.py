"""The Notifications page in Chromium: "Send a test" on each channel, the receiving side real —
an SMTP server that gets the email channel's test, and a webhook URL where nothing listens,
whose failure the page then shows (the flash, the channel failing, the message failed)."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_panel import nav, sign_in, watch_console
from tests.harness import free_port
from tests.harness.smtpsink import SmtpSink

pytestmark = pytest.mark.browser


def test_send_a_test_through_each_channel(panel_server, chromium, smtp_sink: SmtpSink) -> None:
    dead = free_port()
    server = panel_server(sections={
        "notify.email": {"to": ["ops@ops.test"], "owners": False, "smtp": f"127.0.0.1:{smtp_sink.port}"},
        "notify.webhook": {"url": f"http://127.0.0.1:{dead}/hook", "timeout": 5.0}})
    server.add_user("ops", "ops password!", "logs")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "ops", "ops password!")
    nav(page, "Notifications").click()
    page.get_by_role("heading", name="Notifications").wait_for()
    email_row = page.locator('tr[data-channel="email"]')
    assert email_row.locator(".channel-state").inner_text() == "unused"

    email_row.get_by_role("button", name="Send a test through email").click()
    page.get_by_text("Test sent through email to ops@ops.test: delivered.").wait_for()
    [mail] = smtp_sink.wait_for(1)
    assert mail.rcpt_tos == ("ops@ops.test",) and b"a test of the email channel, sent by ops" in mail.content
    assert page.locator('tr[data-channel="email"] .channel-state').inner_text() == "ok"

    page.locator('tr[data-channel="webhook"]').get_by_role("button", name="Send a test through webhook").click()
    page.get_by_text(f"Test through webhook to http://127.0.0.1:{dead}/hook failed:").wait_for()
    webhook_row = page.locator('tr[data-channel="webhook"]')
    assert webhook_row.locator(".channel-state").inner_text() == "failing"
    assert "Cannot connect" in webhook_row.locator(".channel-error").inner_text()
    statuses = page.locator("table.notifications .notice-status").all_inner_texts()
    assert statuses == ["failed", "delivered"]
    assert problems == []


def test_a_users_contact_address_is_set_in_the_user_form(panel_server, chromium) -> None:
    server = panel_server()
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Users").click()
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password", exact=True).fill("carol's password")
    page.get_by_label("Repeat the password").fill("carol's password")
    page.get_by_label("domains_own").check()
    page.get_by_label("Contact address").fill("carol")
    page.get_by_role("button", name="Add user").click()
    assert "'carol' is not an address" in page.locator("#email-error").inner_text()
    assert "carol" not in [u["name"] for u in json.loads(server.cli("user", "list", "--json"))]
    page.get_by_label("Password", exact=True).fill("carol's password")
    page.get_by_label("Repeat the password").fill("carol's password")
    page.get_by_label("Contact address").fill("Carol@Owner.example")
    page.get_by_role("button", name="Add user").click()
    assert page.get_by_role("status").first.inner_text() == "User carol added."
    users = {u["name"]: u for u in json.loads(server.cli("user", "list", "--json"))}
    assert users["carol"]["email"] == "carol@owner.example"

    page.get_by_role("link", name="carol", exact=True).click()
    assert page.get_by_label("Contact address").input_value() == "carol@owner.example"
    page.get_by_label("Contact address").fill("")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "User carol saved."
    users = {u["name"]: u for u in json.loads(server.cli("user", "list", "--json"))}
    assert users["carol"]["email"] is None
    assert problems == []
