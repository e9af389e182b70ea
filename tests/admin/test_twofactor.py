"""Two-factor sign-in (TOTP, RFC 6238) through the real app: enrolment with a confirmation
code, recovery codes stored hashed and good once, the code step of signing in and its
throttle, no code replay, the required-for-admins setting, switching off with password and
code, and ``mrod user 2fa-reset`` from the shell."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time

import pyotp
import pytest

from mrod.admin.app import create_app
from mrod.entities import audit, sessions, throttle, totp
from tests.admin.conftest import PASSWORD, Panel, csrf_of
from tests.conftest import make_config

SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
RECOVERY = re.compile(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>")


def shown_secret(page: str) -> str:
    found = SECRET.search(page)
    assert found, "the set-up page shows the key as text"
    return found.group(1).replace(" ", "")


def now_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + offset_steps * totp.STEP)


async def enrol(panel: Panel) -> tuple[str, list[str]]:
    """Set up two-factor sign-in as a person would: read the key, confirm with a code."""
    status, page = await panel.get("/profile/two-factor")
    assert status == 200 and 'src="data:image/svg+xml' in page, "the QR code is drawn on the page"
    secret = shown_secret(page)
    status, page, _ = await panel.post("/profile/two-factor/confirm", {"code": now_code(secret)})
    assert status == 200 and "shown only this once" in page
    return secret, RECOVERY.findall(page)


async def password_step(panel: Panel, name: str, password: str = PASSWORD, next: str = "/") -> tuple[int, str]:
    page = await (await panel.client.get("/login")).text()
    response = await panel.client.post("/login", data={"name": name, "password": password, "next": next,
                                                       "csrf_token": csrf_of(page)}, allow_redirects=False)
    return response.status, response.headers.get("Location", "")


async def code_step(panel: Panel, code: str) -> tuple[int, str, str]:
    page = await (await panel.client.get("/login/code", allow_redirects=False)).text()
    response = await panel.client.post("/login/code", data={"code": code, "csrf_token": csrf_of(page)},
                                       allow_redirects=False)
    return response.status, response.headers.get("Location", ""), await response.text()


@pytest.mark.both_engines
async def test_enrol_then_sign_in_needs_a_code_once(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    assert (await panel.login("alice")).status == 303
    # A wrong confirmation code changes nothing.
    status, page = await panel.get("/profile/two-factor")
    secret = shown_secret(page)
    status, page, _ = await panel.post("/profile/two-factor/confirm", {"code": "000000"})
    assert status == 400
    assert "does not match" in page
    assert not (await totp.state(app_conn, 1)).enabled
    confirming = now_code(secret)
    status, page, _ = await panel.post("/profile/two-factor/confirm", {"code": confirming})
    codes = RECOVERY.findall(page)
    assert status == 200
    assert len(codes) == totp.RECOVERY_CODES == len(set(codes))
    # Stored hashed: no code appears in the database.
    async with app_conn.execute("SELECT code_hash FROM totp_recovery") as cur:
        stored = {r[0] for r in await cur.fetchall()}
    assert stored == {sessions.digest(c.replace("-", "")) for c in codes}
    # Shown once: the page now says how many are left, not which.
    page = (await panel.get("/profile/two-factor"))[1]
    assert "10 unused recovery codes left" in page
    assert codes[0] not in page
    [entry] = await audit.entries(app_conn, action="2fa-enable")
    assert (entry.actor, entry.entity_key) == ("alice", "alice")
    assert secret not in str(entry.after)

    # Signing in: the password alone gives no session, only the code step.
    browser = await new_panel()
    status, location = await password_step(browser, "alice", next="/domains")
    assert (status, location) == (303, "/login/code")
    assert "mrod_session" not in {c.key for c in browser.client.session.cookie_jar}
    status, _, page = await code_step(browser, "123456")
    assert status == 401
    assert "not right" in page
    # (The code that confirmed the set-up is used, and the page says so; the app's next one,
    # a step on, is good.)
    status, _, page = await code_step(browser, confirming)
    assert status == 401
    assert "That code was already used" in page
    assert "not right" not in page
    code = now_code(secret, +1)
    status, location, _ = await code_step(browser, code)
    assert (status, location) == (303, "/domains")
    assert (await browser.get("/domains"))[0] == 200
    # The same code cannot sign in again (replay), even with the password right.
    again = await new_panel()
    assert (await password_step(again, "alice"))[0] == 303
    assert (await code_step(again, code))[0] == 401


async def test_a_recovery_code_works_once(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    _secret, codes = await enrol(panel)
    first = await new_panel()
    await password_step(first, "alice")
    status, location, _ = await code_step(first, codes[3].upper().replace("-", " "))   # typed loosely
    assert (status, location) == (303, "/")
    second = await new_panel()
    await password_step(second, "alice")
    status, _, page = await code_step(second, codes[3])
    assert status == 401 and "That code was already used" in page
    status, _, page = await code_step(second, "aaaaa-bbbbb")
    assert status == 401 and "That code is not right" in page
    assert (await totp.state(app_conn, 1)).recovery_left == 9


async def test_wrong_codes_are_throttled_like_wrong_passwords(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    secret, _codes = await enrol(panel)
    attacker = await new_panel()
    assert (await password_step(attacker, "alice"))[0] == 303
    for _ in range(2):
        assert (await code_step(attacker, "111111"))[0] == 401
    status, _, page = await code_step(attacker, "111111")           # the 3rd failure: the name's limit
    assert status == 429 and "Too many failed sign-ins" in page
    assert [(b.kind, b.value) for b in await throttle.active(app_conn)] == [("user", "alice")]
    # The half-done sign-in is gone; the password step is blocked too.
    response = await attacker.client.get("/login/code", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    assert (await password_step(attacker, "alice"))[0] == 429


async def test_required_for_admins_sends_them_to_enrol_first(aiohttp_client, tmp_path, make_user, app_conn) -> None:
    await make_user("root", admin=True)
    await make_user("bob", "domains")
    cfg = make_config(tmp_path, admin={"bcrypt_rounds": 4, "two_factor_required": "admins"})
    app = create_app(cfg)
    root = Panel(await aiohttp_client(app))
    assert (await root.login("root")).status == 303
    for path in ("/", "/domains", "/users", "/profile"):
        status, _ = await root.get(path)
        assert status == 303, path
    response = await root.client.get("/users", allow_redirects=False)
    assert response.headers["Location"] == "/profile/two-factor"
    status, page = await root.get("/profile/two-factor")
    assert status == 200 and "must use two-factor sign-in" in page
    root.csrf = csrf_of(page)
    await enrol(root)
    assert (await root.get("/users"))[0] == 200
    # Others are not asked.
    bob = Panel(await aiohttp_client(root.client.server))
    assert (await bob.login("bob")).status == 303 and (await bob.get("/domains"))[0] == 200


def test_a_bad_two_factor_setting_is_a_one_line_config_error(tmp_path) -> None:
    from mrod.infra.errors import ConfigError

    with pytest.raises(ConfigError, match="two_factor_required"):
        make_config(tmp_path, admin={"two_factor_required": "sometimes"})


async def test_switching_off_needs_password_and_code(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    secret, codes = await enrol(panel)
    status, page, _ = await panel.post("/profile/two-factor/disable", {"current": "wrong wrong", "code": now_code(secret)})
    assert status == 400 and "not your current password" in html.unescape(page)
    status, page, _ = await panel.post("/profile/two-factor/disable", {"current": PASSWORD, "code": "000000"})
    assert status == 400 and "does not match" in page
    assert (await totp.state(app_conn, 1)).enabled
    status, _, _ = await panel.post("/profile/two-factor/disable", {"current": PASSWORD, "code": codes[0]})
    assert status == 303
    assert not (await totp.state(app_conn, 1)).enabled
    async with app_conn.execute("SELECT count(*) FROM totp_recovery") as cur:
        assert (await cur.fetchone())[0] == 0
    assert [e.actor for e in await audit.entries(app_conn, action="2fa-disable")] == ["alice"]
    # The password alone signs in again.
    response = await (await new_panel()).login("alice")
    assert (response.status, response.headers["Location"]) == (303, "/")


async def test_cli_2fa_reset_lets_a_locked_out_user_in_with_the_password(new_panel, make_user, app_conn,
                                                                         database, tmp_path) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    await enrol(panel)
    config = tmp_path / "mrod.toml"
    section = "".join(f'{key} = "{value}"\n' for key, value in database.items())   # either engine
    config.write_text(f'[database]\n{section}[lookupd]\nsocketmap = ""\npolicy = ""\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "user", *args],
                              capture_output=True, text=True, timeout=60, env=env)
    import json

    assert {u["name"]: u["two_factor"] for u in json.loads(cli("list", "--json").stdout)} == {"alice": True}
    result = cli("2fa-reset", "alice")
    assert result.returncode == 0 and "two-factor sign-in of alice removed" in result.stdout
    assert not (await totp.state(app_conn, 1)).enabled
    assert cli("list").stdout.split()[4:10] == ["2FA", "1", "alice", "domains", "yes", "no"] and json.loads(cli("list", "--json").stdout)[0]["two_factor"] is False
    assert (await panel.get("/profile"))[0] == 303            # their sessions ended
    response = await (await new_panel()).login("alice")
    assert (response.status, response.headers["Location"]) == (303, "/")
    [entry] = await audit.entries(app_conn, action="2fa-reset")
    assert entry.origin == "cli" and entry.entity_key == "alice"
    missing = cli("2fa-reset", "nobody")
    assert missing.returncode != 0 and "nobody" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


async def test_two_factor_sign_in_events_are_audited(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    secret, codes = await enrol(panel)
    browser = await new_panel()
    await password_step(browser, "alice")
    await code_step(browser, "000000")
    await code_step(browser, now_code(secret, +1))
    again = await new_panel()
    await password_step(again, "alice")
    await code_step(again, codes[0])
    events = [(e.action, e.after) for e in reversed(await audit.entries(app_conn, entity="sign_in", key="alice"))]
    assert events[1:] == [
        ("password-ok", {"next_step": "two-factor code"}),
        ("failed", {"step": "two-factor code"}),
        ("signed-in", {"factors": "password + TOTP code"}),
        ("password-ok", {"next_step": "two-factor code"}),
        ("signed-in", {"factors": "password + recovery code"}),
    ]


async def test_the_code_step_keeps_its_csrf_check(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    await panel.login("alice")
    secret, _codes = await enrol(panel)
    browser = await new_panel()
    await password_step(browser, "alice")
    # Without the form's token, or with another one, the right code is refused and nothing is used.
    response = await browser.client.post("/login/code", data={"code": now_code(secret, +1)}, allow_redirects=False)
    assert response.status == 403
    response = await browser.client.post("/login/code", data={"code": now_code(secret, +1), "csrf_token": "x" * 32},
                                         allow_redirects=False)
    assert response.status == 403
    # A browser that lost the sign-in form's cookie gets a fresh pair from the code page.
    browser.client.session.cookie_jar.clear(lambda c: c.key == "mrod_login_csrf")
    status, location, _ = await code_step(browser, now_code(secret, +1))
    assert (status, location) == (303, "/")
