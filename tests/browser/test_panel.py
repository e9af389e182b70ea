"""The panel in real headless Chromium, served by the real ``mrod admin`` process.

Sign-in with the first admin's printed password; adding a relay and a domain; editing;
deleting with the confirmation dialog; the permission-limited view of a ``domains_own`` user;
a POST whose CSRF token was removed is refused; the keyboard alone signs in; no page breaks
its Content-Security-Policy. One test takes the screenshot in docs/screenshots/domains.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "screenshots" / "domains.png"


def watch_console(page) -> list[str]:
    """Collect console errors — a CSP violation (inline script/style) shows up there."""
    problems: list[str] = []
    # ("Failed to load resource" is a 4xx the test provoked on purpose, not a page problem.)
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(url + "/")


def test_first_admin_adds_a_relay_and_a_domain_then_edits_and_deletes(panel_server, chromium) -> None:
    server = panel_server()
    assert server.password, "the first start prints the admin password"
    page = chromium.new_page()
    problems = watch_console(page)
    # A wrong password gets the generic error, the printed one signs in.
    page.goto(server.url + "/")
    assert page.url.startswith(server.url + "/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Invalid user name or password."
    sign_in(page, server.url, "admin", server.password)
    assert page.get_by_role("heading", name="Dashboard").is_visible()

    nav(page, "Relays").click()
    page.get_by_role("link", name="Add a relay").click()
    page.get_by_label("Name", exact=True).fill("primary")
    page.get_by_label("Host", exact=True).fill("mx1.example.net")
    page.get_by_label("TLS required").select_option("encrypt")
    page.get_by_role("button", name="Add relay").click()
    assert page.get_by_role("status").first.inner_text() == "Relay primary added."
    assert page.get_by_role("cell", name="[mx1.example.net]:25").is_visible()

    nav(page, "Domains").click()
    page.get_by_role("link", name="Add a domain").first.click()
    # With JavaScript the host fields hide until "own primary host" is chosen.
    assert not page.get_by_label("Host", exact=True).is_visible()
    page.get_by_label("Domain name").fill("bücher.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("heading", name="bücher.example").is_visible()
    told = page.locator("table.told")
    assert "OK xn--bcher-kva.example" in told.inner_text()
    assert "OK relay:[mx1.example.net]:25" in told.inner_text()

    # A bad value: the error shows beside its field, nothing is written.
    page.goto(server.url + "/domains/new")
    page.get_by_label("Domain name").fill("bad_name.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_role("button", name="Add domain").click()
    assert "inner hyphens" in page.locator("#name-error").inner_text()
    assert page.get_by_label("Domain name").get_attribute("aria-invalid") == "true"

    # Edit: route to its own host, listed recipients.
    page.goto(server.url + "/domains/xn--bcher-kva.example")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("To its own primary host (override)").check()
    assert page.get_by_label("Host", exact=True).is_visible()
    page.get_by_label("Host", exact=True).fill("mx9.example.net")
    page.get_by_label("Port", exact=True).fill("2525")
    page.get_by_label("Recipients").select_option("listed")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Domain bücher.example saved."
    page.get_by_label("Add a recipient").fill("sales")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("Recipient to try").fill("sales+tag")
    page.get_by_role("button", name="Ask").click()
    told = page.locator("table.told").inner_text()
    assert "OK relay:[mx9.example.net]:2525" in told and "OK sales@xn--bcher-kva.example" in told

    # Delete: the confirmation page (the no-JavaScript path), then the domain is gone.
    page.get_by_role("link", name="Delete").click()
    assert page.get_by_role("heading", name="Delete bücher.example?").is_visible()
    page.get_by_role("button", name="Delete bücher.example").click()
    assert page.get_by_role("status").first.inner_text() == "Domain bücher.example deleted."
    assert "No domains" in page.locator("main").inner_text()
    assert problems == []


def test_domain_list_and_screenshot(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net", "--tls", "encrypt")
    server.cli("relay", "add", "backup-dc2", "--host", "192.0.2.25", "--port", "2525")
    lines = "".join(f"shop{i:02}.example{' backup-dc2' if i % 4 == 0 else ''}\n" for i in range(60))
    server.cli("domain", "import", "-", "--relay", "primary", input=lines + "bücher.example\nxn--mnchen-3ya.example\n")
    server.cli("domain", "set", "shop03.example", "--disable")
    server.cli("domain", "set", "shop07.example", "--recipients", "listed", "--subdomains")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    page.goto(server.url + "/domains")
    assert page.get_by_role("heading", name="Domains").inner_text().split() == ["Domains", "62"]
    assert page.get_by_text("Page 1 of 2").is_visible()
    # Filters apply on change (JavaScript), sorting by a column header.
    page.get_by_label("Relay").select_option("backup-dc2")
    page.wait_for_url("**relay=backup-dc2**")
    assert page.locator("table.domains tbody tr").count() == 15
    page.get_by_role("link", name="Domain ↑").click()        # sorted by name: now descending
    page.wait_for_url("**dir=desc**")
    assert page.locator("table.domains tbody tr").first.inner_text().strip().startswith("shop56.example")
    page.goto(server.url + "/domains?per_page=25")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    # Responsive: on a phone-sized screen no page is wider than the screen (tables scroll).
    page.set_viewport_size({"width": 400, "height": 800})
    for path in ("/domains", "/", "/relays", "/domains/shop07.example", "/domains/new", "/profile", "/logs"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 400, path
    assert problems == []


def test_domains_own_user_sees_only_their_domains(panel_server, chromium) -> None:
    server = panel_server()
    server.add_user("owner", "owner password", "domains_own")
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    server.cli("domain", "add", "theirs.example", "--relay", "primary")
    page = chromium.new_page()
    sign_in(page, server.url, "owner", "owner password")
    menu = page.get_by_role("navigation", name="Main").inner_text()
    assert "Domains" in menu and "Relays" not in menu and "Users" not in menu and "Audit log" not in menu
    nav(page, "Domains").click()
    assert "No domains" in page.locator("main").inner_text()
    page.get_by_role("link", name="Add a domain").click()
    assert page.get_by_label("Owner").count() == 0
    page.get_by_label("Domain name").fill("mine.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_role("button", name="Add domain").click()
    nav(page, "Domains").click()
    rows = page.locator("table.domains tbody tr")
    assert rows.count() == 1 and rows.first.inner_text().strip().startswith("mine.example")
    response = page.goto(server.url + "/domains/theirs.example")
    assert response.status == 403 and "not yours" in page.locator("main").inner_text()
    response = page.goto(server.url + "/users")
    assert response.status == 403
    listed = server.cli("domain", "list", "--json")
    assert '"theirs.example"' in listed and '"mine.example"' in listed


def test_post_without_csrf_token_is_refused(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    page = chromium.new_page()
    sign_in(page, server.url, "admin", server.password)
    page.goto(server.url + "/domains/new")
    page.get_by_label("Domain name").fill("forged.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Add domain").click()
    assert posted.value.status == 403
    assert "CSRF check failed" in page.locator("main").inner_text()
    assert "forged.example" not in server.cli("domain", "list", "--json")
    # A tampered token fails the same way; the real one works.
    page.goto(server.url + "/domains/new")
    page.get_by_label("Domain name").fill("forged.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').value = 'x' + "
                  "document.querySelector('main form input[name=csrf_token]').value")
    page.get_by_role("button", name="Add domain").click()
    assert "CSRF check failed" in page.locator("main").inner_text()
    page.goto(server.url + "/domains/new")
    page.get_by_label("Domain name").fill("real.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("heading", name="real.example").is_visible()


def test_keyboard_only_sign_in_and_confirm_dialog(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    server.cli("domain", "add", "shop.example", "--relay", "primary", "--recipients", "listed")
    server.cli("recipient", "add", "sales@shop.example")
    page = chromium.new_page()
    problems = watch_console(page)
    page.goto(server.url + "/login")
    # The user name field has focus; Tab reaches the password, Enter submits.
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(server.password)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.goto(server.url + "/domains/shop.example")
    # The remove button asks first (JavaScript confirm); dismissing keeps the recipient.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Remove sales@shop.example").click()
    assert page.locator("ul.recipients li").count() == 1 and "sales@shop.example" in server.cli("recipient", "list", "shop.example")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove sales@shop.example").click()
    assert page.get_by_role("status").first.inner_text() == "Recipient sales@shop.example removed."
    assert problems == []


@pytest.mark.postfix
def test_a_domain_added_in_the_browser_is_answered_to_postmap(panel_server, chromium, mrod_factory,
                                                             postfix_factory) -> None:
    lookupd = mrod_factory()                      # the real `mrod lookupd`, socketmap on a free port
    postfix = postfix_factory(lookupd.config, start=False)   # postmap needs no running Postfix
    relay_domains = lookupd.socketmap_table("relay_domains")
    assert postfix.postmap_q("shop.example", relay_domains)[0] == 1          # not (yet) a domain here
    server = panel_server(database=lookupd.db_path)
    server.add_user("operator", "operator password", admin=True)
    page = chromium.new_page()
    sign_in(page, server.url, "operator", "operator password")
    page.goto(server.url + "/relays/new")
    page.get_by_label("Name", exact=True).fill("primary")
    page.get_by_label("Host", exact=True).fill("mx1.example.net")
    page.get_by_role("button", name="Add relay").click()
    page.goto(server.url + "/domains/new")
    page.get_by_label("Domain name").fill("shop.example")
    page.get_by_label("Relay", exact=True).select_option("primary")
    page.get_by_label("Include subdomains").check()
    page.get_by_role("button", name="Add domain").click()
    assert page.get_by_role("heading", name="shop.example").is_visible()
    # The very next lookup sees it: real Postfix asks the real lookupd over socketmap.
    assert postfix.postmap_q("shop.example", relay_domains) == (0, "shop.example", "")
    assert postfix.postmap_q("eu.shop.example", relay_domains) == (0, "shop.example", "")
    assert postfix.postmap_q("joe@shop.example", lookupd.socketmap_table("transport"))[:2] == (
        0, "relay:[mx1.example.net]:25")
    # And the panel's "what Postfix is told" says the same as Postfix heard.
    assert "OK shop.example" in page.locator("table.told").inner_text()
