"""The sign-in, profile, password and API-token forms, filled through the fields a person sees
in real Chromium; each effect is then checked from outside the page (the JSON API with the
token the form made, or the CLI)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.browser.test_panel import sign_in, watch_console

pytestmark = pytest.mark.browser


def api(server: Any, token: str, path: str) -> tuple[int, Any]:
    """GET an API path with a bearer token, as a script would."""
    request = urllib.request.Request(server.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def create_token(page: Any, server: Any, name: str) -> str:
    page.goto(server.url + "/profile")
    page.get_by_label("New token for").fill(name)
    page.get_by_role("button", name="Create token").click()
    return page.locator("#new-token").inner_text()


def test_token_form_creates_a_working_token_and_revokes_it(panel_server, chromium) -> None:
    server = panel_server()
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    # An empty name is refused beside its field, and no token is made.
    page.goto(server.url + "/profile")
    page.get_by_role("button", name="Create token").click()
    assert "1 to 64 characters" in page.locator("#token_name-error").inner_text()
    assert page.locator("table.tokens").count() == 0
    token = create_token(page, server, "provisioning script")
    assert token.startswith("mrod_")
    assert page.get_by_role("cell", name="provisioning script", exact=True).is_visible()
    status, me = api(server, token, "/me")
    assert status == 200 and me["name"] == "admin"
    # Revoke asks first; the token stops working at once.
    page.goto(server.url + "/profile")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke provisioning script").click()
    assert page.get_by_role("status").first.inner_text() == "Token provisioning script revoked."
    assert api(server, token, "/me")[0] == 401
    assert problems == []


def test_password_form_changes_the_password_and_shows_every_error(panel_server, chromium) -> None:
    server = panel_server()
    server.add_user("alice", "alice's old password", "domains", "logs")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "alice", "alice's old password")
    token = create_token(page, server, "audit reader")
    page.goto(server.url + "/profile")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("Repeat the new password").fill("other")
    page.get_by_role("button", name="Change password").click()
    # Every field's error at once.
    assert "not your current password" in page.locator("#current-error").inner_text()
    assert "at least 10 characters" in page.locator("#password-error").inner_text()
    assert "differ" in page.locator("#password2-error").inner_text()
    page.get_by_label("Current password").fill("alice's old password")
    page.get_by_label("New password", exact=True).fill("alice's new password")
    page.get_by_label("Repeat the new password").fill("alice's new password")
    page.get_by_role("button", name="Change password").click()
    assert page.get_by_role("status").first.inner_text().startswith("Password changed.")
    # The old password no longer signs in; the new one does.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice's old password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Invalid user name or password."
    sign_in(page, server.url, "alice", "alice's new password")
    status, found = api(server, token, "/audit?entity=user&action=passwd")
    assert status == 200 and [(e["actor"], e["entity_key"]) for e in found["items"]] == [("alice", "alice")]
    assert problems == []


def test_sign_in_form_returns_to_the_page_asked_for_but_never_off_site(panel_server, chromium) -> None:
    server = panel_server()
    page = chromium.new_page()
    problems = watch_console(page)
    page.goto(server.url + "/relays?sort=name")
    assert page.url.startswith(server.url + "/login?next=")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/relays?sort=name")
    page.get_by_role("button", name="Sign out").click()
    # A next= with a TAB (browsers drop it: //evil.example/) lands on the dashboard instead.
    for hostile in ("%2F%09%2Fevil.example%2F", "%2F%0D%2Fevil.example%2F", "%2F%5Cevil.example"):
        page.goto(server.url + "/login?next=" + hostile)
        assert page.locator("input[name=next]").get_attribute("value") == "/"
    page.goto(server.url + "/login?next=%2F%09%2Fevil.example%2F")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    assert problems == []


def sign_in_with_code(page: Any, server: Any, name: str, password: str, code: str) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/login/code")
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Verify").click()


def test_two_factor_enrol_sign_in_with_a_code_and_a_recovery_code_once(panel_server, chromium) -> None:
    import time

    import pyotp

    server = panel_server()
    server.add_user("erin", "erin's password", "logs")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "erin", "erin's password")
    token = create_token(page, server, "audit reader")
    page.goto(server.url + "/profile")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    qr = page.get_by_role("img", name="QR code holding your two-factor secret for mrod")
    assert qr.get_attribute("src").startswith("data:image/svg+xml") and qr.evaluate("i => i.naturalWidth") > 100
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your app").fill("000000")
    page.get_by_role("button", name="Confirm and switch on").click()
    assert "does not match" in page.locator("#code-error").inner_text()
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from your app").fill(totp.now())
    page.get_by_role("button", name="Confirm and switch on").click()
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("button", name="Sign out").click()

    # A code computed here (the app's next one: the confirming one is used up) signs in.
    sign_in_with_code(page, server, "erin", "erin's password", totp.at(time.time() + 30))
    page.wait_for_url(server.url + "/")
    page.get_by_role("button", name="Sign out").click()
    # A recovery code signs in once ...
    sign_in_with_code(page, server, "erin", "erin's password", codes[0])
    page.wait_for_url(server.url + "/")
    page.get_by_role("button", name="Sign out").click()
    # ... and not twice: the page says it was used, not that it is wrong.
    sign_in_with_code(page, server, "erin", "erin's password", codes[0])
    assert page.get_by_role("alert").inner_text().startswith("That code was already used")
    assert page.url == server.url + "/login/code"
    assert json.loads(server.cli("user", "list", "--json"))[1]["two_factor"] is True
    status, found = api(server, token, "/audit?entity=user&action=2fa-enable")
    assert status == 200 and [e["actor"] for e in found["items"]] == ["erin"]
    assert problems == []


LONG_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Version/4.0 Chrome/121.0.6167.178 Mobile Safari/537.36 provisioning-script/2.1")


def script_session(server: Any, name: str, password: str) -> Any:
    """A second session of the same user, signed in over plain HTTP (another device)."""
    import http.cookiejar
    import re as regex
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", LONG_AGENT)]
    page = opener.open(server.url + "/login", timeout=10).read().decode()
    found = regex.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the sign-in form carries its CSRF token"
    csrf = found.group(1)
    data = urllib.parse.urlencode({"name": name, "password": password, "csrf_token": csrf, "next": "/profile"})
    with opener.open(server.url + "/login", data=data.encode(), timeout=10) as response:
        assert response.url == server.url + "/profile"
    return opener


def test_profile_signs_out_every_other_session(panel_server, chromium) -> None:
    server = panel_server()
    other = script_session(server, "admin", server.password)
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    page.goto(server.url + "/profile")
    sessions = page.locator("main ul").filter(has_text="last seen").locator("li")
    assert sessions.count() == 2
    # A long user agent is cut at a word, never inside one (the whole of it is its title).
    theirs = sessions.filter(has_text="Pixel 8 Pro").first
    shown = theirs.inner_text().split(" — ", 1)[1].split(", last seen")[0]
    assert shown.endswith("…") and LONG_AGENT.startswith(shown[:-1]) and LONG_AGENT[len(shown) - 1] == " ", shown
    assert theirs.locator("span[title]").get_attribute("title") == LONG_AGENT
    mine = sessions.filter(has_text="(this one)").first.inner_text()
    assert page.evaluate("navigator.userAgent") in mine            # a usual agent is shown whole
    page.get_by_role("button", name="Sign out all other sessions").click()
    assert page.get_by_role("status").first.inner_text() == "1 other session(s) signed out."
    # The other device is signed out: its next page is the sign-in form.
    with other.open(server.url + "/profile", timeout=10) as response:
        assert response.url.startswith(server.url + "/login")
    assert page.get_by_role("button", name="Sign out all other sessions").count() == 0
    assert problems == []


def test_required_two_factor_enrolment_then_switch_off_and_sign_ins_in_the_audit_log(panel_server, chromium) -> None:
    import pyotp

    server = panel_server(two_factor_required="admins")
    page = chromium.new_page()
    problems = watch_console(page)
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    # An admin must set it up first: every page leads to the set-up.
    page.wait_for_url(server.url + "/profile/two-factor")
    assert "must use two-factor sign-in" in page.get_by_role("alert").inner_text()
    page.goto(server.url + "/users")
    assert page.url == server.url + "/profile/two-factor"
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and switch on").click()
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    page.get_by_role("link", name="Done").click()
    page.wait_for_url(server.url + "/")

    # Sign-ins are in the audit log.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    page.get_by_label("What").select_option("sign_in")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit tbody tr").all_inner_texts()
    assert any("signed-in sign_in" in r and "factors: password" in r for r in rows), rows
    assert any("failed sign_in" in r and "step: password" in r for r in rows), rows

    # Switching off takes the password and a code; a wrong password changes nothing.
    page.goto(server.url + "/profile")
    page.get_by_role("link", name="Manage two-factor sign-in").click()
    page.get_by_label("Current password").fill("wrong password")
    page.get_by_label("Code from your app").fill(codes[0])
    page.get_by_role("button", name="Switch off two-factor sign-in").click()
    assert "not your current password" in page.locator("#current-error").inner_text()
    assert json.loads(server.cli("user", "list", "--json"))[0]["two_factor"] is True
    page.get_by_label("Current password").fill(server.password)
    page.get_by_label("Code from your app").fill(codes[0])
    page.get_by_role("button", name="Switch off two-factor sign-in").click()
    assert page.get_by_role("status").first.inner_text().startswith("Two-factor sign-in is off.")
    assert json.loads(server.cli("user", "list", "--json"))[0]["two_factor"] is False
    # Still required for admins: the next page is the set-up again.
    page.goto(server.url + "/domains")
    assert page.url == server.url + "/profile/two-factor"
    assert problems == []
