"""The relay, user and blocklist forms, filled through the fields a person sees in real
Chromium; each effect is then checked through the CLI (``mrod relay list --json``, ``mrod user
list --json``) or the login it allows."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_panel import nav, sign_in, watch_console

pytestmark = pytest.mark.browser


def relays_of(server) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(server.cli("relay", "list", "--json"))}


def users_of(server) -> dict[str, dict]:
    return {u["name"]: u for u in json.loads(server.cli("user", "list", "--json"))}


def test_relay_forms_add_edit_test_and_delete(panel_server, chromium, smtp_sink) -> None:
    server = panel_server()
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Relays").click()
    page.get_by_role("link", name="Add a relay").click()
    # Bad input: the message sits beside its field, nothing is written.
    page.get_by_label("Name", exact=True).fill("dc 1")
    page.get_by_label("Host", exact=True).fill("mx1.example.net")
    page.get_by_label("Port", exact=True).fill("70000")
    page.get_by_role("button", name="Add relay").click()
    assert page.locator("#name-error").is_visible() and page.locator("#port-error").is_visible()   # both at once
    assert page.get_by_label("Host", exact=True).input_value() == "mx1.example.net"   # kept for a retry
    assert relays_of(server) == {}
    page.get_by_label("Name", exact=True).fill("dc1")
    page.get_by_label("Host", exact=True).fill("127.0.0.1")
    page.get_by_label("Port", exact=True).fill(str(smtp_sink.port))
    page.get_by_label("Protocol").select_option("smtp")
    page.get_by_label("TLS required").select_option("may")
    page.get_by_role("button", name="Add relay").click()
    assert page.get_by_role("status").first.inner_text() == "Relay dc1 added."
    relay = relays_of(server)["dc1"]
    assert (relay["host"], relay["port"], relay["tls"]) == ("127.0.0.1", smtp_sink.port, "may")

    # Test connection: a real SMTP dialogue with the sink.
    page.get_by_role("button", name="Test connection to dc1").click()
    assert page.get_by_role("heading", name="Connection test: dc1").is_visible()
    assert page.get_by_role("status").first.inner_text().startswith("OK")

    # Edit: a new TLS requirement and host.
    page.goto(server.url + "/relays")
    page.get_by_role("link", name="dc1", exact=True).click()
    page.get_by_label("Host", exact=True).fill("mx2.example.net")
    page.get_by_label("Port", exact=True).fill("2525")
    page.get_by_label("TLS required").select_option("encrypt")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Relay dc1 saved."
    relay = relays_of(server)["dc1"]
    assert (relay["host"], relay["port"], relay["tls"]) == ("mx2.example.net", 2525, "encrypt")

    # Delete with its domain moved to another relay (the no-JavaScript confirmation page).
    server.cli("relay", "add", "dc2", "--host", "mx3.example.net")
    server.cli("domain", "add", "shop.example", "--relay", "dc1")
    page.goto(server.url + "/relays")
    page.get_by_role("link", name="Delete dc1").click()
    page.get_by_label("Move its domains to").select_option("dc2")
    page.get_by_role("button", name="Delete dc1").click()
    assert page.get_by_role("status").first.inner_text() == "Relay dc1 deleted; its 1 domain(s) now use dc2."
    assert set(relays_of(server)) == {"dc2"}
    assert json.loads(server.cli("domain", "list", "--json"))[0]["relay_name"] == "dc2"
    assert problems == []


def test_user_forms_add_edit_and_delete(panel_server, chromium) -> None:
    server = panel_server()
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Users").click()
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password", exact=True).fill("carol's password")
    page.get_by_label("Repeat the password").fill("something else")
    page.get_by_role("button", name="Add user").click()
    assert "differ" in page.locator("#password2-error").inner_text()
    assert "carol" not in users_of(server)
    page.get_by_label("Password", exact=True).fill("carol's password")
    page.get_by_label("Repeat the password").fill("carol's password")
    page.get_by_label("domains_own").check()
    page.get_by_label("queue").check()
    page.get_by_role("button", name="Add user").click()
    assert page.get_by_role("status").first.inner_text() == "User carol added."
    carol = users_of(server)["carol"]
    assert sorted(carol["permissions"]) == ["domains_own", "queue"] and carol["enabled"] and not carol["is_admin"]

    # Edit: other permissions, a new password, disabled.
    page.get_by_role("link", name="carol", exact=True).click()
    page.get_by_label("domains_own").uncheck()
    page.get_by_label("logs").check()
    page.get_by_label("New password").fill("carol's new password")
    page.get_by_label("Repeat the password").fill("carol's new password")
    page.get_by_label("Enabled (may sign in)").uncheck()
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text().startswith("User carol saved and password changed")
    carol = users_of(server)["carol"]
    assert sorted(carol["permissions"]) == ["logs", "queue"] and not carol["enabled"]

    # Delete through the confirmation page.
    page.get_by_role("link", name="Delete carol").click()
    page.get_by_role("button", name="Delete carol").click()
    assert page.get_by_role("status").first.inner_text().startswith("User carol deleted")
    assert "carol" not in users_of(server)
    assert problems == []


def test_blocklist_lift_lets_a_blocked_name_sign_in_again(panel_server, chromium) -> None:
    server = panel_server(login_max_failures_user=3)
    server.add_user("dave", "dave's password", "domains")
    attacker = chromium.new_page()
    for _ in range(3):
        attacker.goto(server.url + "/login")
        attacker.get_by_label("User name").fill("dave")
        attacker.get_by_label("Password").fill("a wrong guess")
        attacker.get_by_role("button", name="Sign in").click()
    assert attacker.get_by_role("alert").inner_text().startswith("Too many failed sign-ins")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    nav(page, "Blocklist").click()
    blocks = page.locator("table.blocks tbody tr")
    assert blocks.count() == 1 and "dave" in blocks.first.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Lift the block on dave").click()
    assert page.get_by_role("status").first.inner_text() == "Block on user dave lifted."
    assert "No active blocks." in page.locator("main").inner_text()
    # The name may sign in again (the effect, from another browser page).
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server.url, "dave", "dave's password")
    assert problems == []
