"""Sign-in, sessions, cookies, CSRF, throttling and the blocklist, through the real app."""

from __future__ import annotations

import pytest

from mrod.admin.auth import safe_next
from mrod.entities import audit, sessions, throttle
from tests.admin.conftest import PASSWORD, csrf_of

GENERIC = "Invalid user name or password."
BLOCKED = "Too many failed sign-ins."


@pytest.mark.both_engines
async def test_sign_in_sets_a_strict_httponly_cookie_and_signs_out(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    response = await panel.login("alice")
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mrod_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie                  # plain HTTP, no proxy: "auto" leaves it off
    token = cookie.split(";")[0].split("=", 1)[1]
    # Only the token's hash is stored.
    async with app_conn.execute("SELECT token_hash FROM session") as cur:
        stored = [r[0] for r in await cur.fetchall()]
    assert stored == [sessions.digest(token)]
    assert token not in stored
    status, page = await panel.get("/")
    assert status == 200
    assert "Dashboard" in page
    assert "alice" in page
    status, _, _ = await panel.post("/logout")
    assert status == 303
    # The old cookie no longer signs anyone in, even if a browser sends it again.
    status, _ = await panel.get("/", cookies={"mrod_session": token})
    assert status == 303
    async with app_conn.execute("SELECT count(*) FROM session") as cur:
        assert (await cur.fetchone())[0] == 0


async def test_secure_cookie_over_https_proxy_and_when_always(aiohttp_client, tmp_path, make_user) -> None:
    from mrod.admin.app import create_app
    from tests.admin.conftest import Panel
    from tests.conftest import make_config

    await make_user("alice", "domains")
    proxied = make_config(tmp_path, admin={"bcrypt_rounds": 4, "trust_proxy": True})
    panel = Panel(await aiohttp_client(create_app(proxied)))
    response = await panel.login("alice", **{"X-Forwarded-Proto": "https"})
    cookie = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mrod_session="))
    assert "Secure" in cookie and "Strict-Transport-Security" in response.headers
    always = make_config(tmp_path, admin={"bcrypt_rounds": 4, "cookie_secure": "always"})
    client = await aiohttp_client(create_app(always))
    form = await client.get("/login")
    login_cookie = form.cookies["mrod_login_csrf"]
    assert login_cookie["secure"] and login_cookie["httponly"]
    # (A client on plain HTTP keeps a Secure cookie to itself: send it by hand.)
    response = await client.post("/login", data={"name": "alice", "password": PASSWORD,
                                                 "csrf_token": csrf_of(await form.text())},
                                 cookies={"mrod_login_csrf": login_cookie.value}, allow_redirects=False)
    assert response.status == 303
    assert "Secure" in next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mrod_session="))
    # Without trust_proxy a client cannot claim HTTPS.
    untrusted = make_config(tmp_path, admin={"bcrypt_rounds": 4})
    panel = Panel(await aiohttp_client(create_app(untrusted)))
    response = await panel.login("alice", **{"X-Forwarded-Proto": "https"})
    assert "Secure" not in next(c for c in response.headers.getall("Set-Cookie") if c.startswith("mrod_session="))


async def test_wrong_password_and_unknown_user_get_the_same_generic_error(new_panel, make_user) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    wrong = await panel.login("alice", "not the password")
    unknown = await panel.login("nobody", "not the password")
    assert wrong.status == unknown.status == 401
    wrong_text, unknown_text = await wrong.text(), await unknown.text()
    assert GENERIC in wrong_text and GENERIC in unknown_text
    assert "exist" not in wrong_text.lower() and "exist" not in unknown_text.lower()
    assert (await panel.get("/"))[0] == 303      # still signed out


async def test_disabled_user_cannot_sign_in_and_loses_sessions(new_panel, make_user, app_conn, actor) -> None:
    from mrod.entities import users

    await make_user("alice", "domains")
    panel = await new_panel()
    assert (await panel.login("alice")).status == 303
    await users.update(app_conn, actor, "alice", enabled=False)
    assert (await panel.get("/"))[0] == 303
    response = await (await new_panel()).login("alice")
    assert response.status == 401 and GENERIC in await response.text()


async def test_post_without_csrf_token_is_refused_and_changes_nothing(admin_panel, app_conn) -> None:
    before = await audit.count(app_conn)
    status, page, _ = await admin_panel.post("/relays/new", {"name": "r1", "host": "mx.example.net"}, csrf=False)
    assert status == 403 and "CSRF" in page
    status, page, _ = await admin_panel.post("/relays/new", {"name": "r1", "host": "mx.example.net",
                                                             "csrf_token": "forged"}, csrf=False)
    assert status == 403
    # A form posted from another site (the browser says so in Origin) is refused too.
    status, _, _ = await admin_panel.post("/relays/new", {"name": "r1", "host": "mx.example.net"},
                                          headers={"Origin": "https://evil.example"})
    assert status == 403
    assert await audit.count(app_conn) == before
    async with app_conn.execute("SELECT count(*) FROM relay") as cur:
        assert (await cur.fetchone())[0] == 0
    # The same form with the session's token works.
    status, _, _ = await admin_panel.post("/relays/new", {"name": "r1", "host": "mx.example.net"})
    assert status == 303


async def test_login_form_needs_its_csrf_token(client, make_user) -> None:
    await make_user("alice", "domains")
    response = await client.post("/login", data={"name": "alice", "password": PASSWORD}, allow_redirects=False)
    assert response.status == 403


async def test_next_never_redirects_off_site(new_panel, make_user) -> None:
    await make_user("alice", "domains")
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/domains?q=a", "/domains?q=a"),
                             ("/\t/evil.example/", "/"), ("/\r/evil.example/", "/"), ("/\n/evil.example", "/")):
        panel = await new_panel()
        page = await (await panel.client.get("/login")).text()
        response = await panel.client.post("/login", data={"name": "alice", "password": PASSWORD, "next": target,
                                                           "csrf_token": csrf_of(page)}, allow_redirects=False)
        assert response.headers["Location"] == expected
    # A page that needs sign-in sends there and back.
    status, _ = await (await new_panel()).get("/domains?q=x")
    assert status == 303


@pytest.mark.parametrize("target", [
    "//evil.example/", "/\t/evil.example/", "/\r/evil.example/", "/\n/evil.example/", "\t//evil.example/",
    "/\\evil.example/", "\\\\evil.example", "https://evil.example/", "javascript:alert(1)", "http:/evil.example",
    "evil.example", "", " /domains", "/do mains", "/\x00x", "/\x7fx", "/\u0085x", "/\u2028//evil.example",
    "/\u3000/evil.example", "x" * 3000])
def test_safe_next_refuses_every_target_off_this_site(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/domains", "/domains?q=a&page=2", "/domains/b%C3%BCcher.example",
                                    "/relays/3/delete", "/%09/x"])
def test_safe_next_keeps_a_path_on_this_site(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.both_engines
async def test_password_change_ends_every_other_session(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    first, second = await new_panel(), await new_panel()
    assert (await first.login("alice")).status == 303
    assert (await second.login("alice")).status == 303
    status, page, _ = await first.post("/profile/password", {"current": "wrong wrong", "password": "a new password!",
                                                              "password2": "a new password!"})
    assert status == 400
    assert "not your current password" in page
    status, page, _ = await first.post("/profile/password", {"current": PASSWORD, "password": "short",
                                                              "password2": "short"})
    assert status == 400
    assert "at least 10 characters" in page
    status, _, _ = await first.post("/profile/password", {"current": PASSWORD, "password": "a new password!",
                                                           "password2": "a new password!"})
    assert status == 303
    assert (await first.get("/profile"))[0] == 200     # the session that changed it stays
    assert (await second.get("/profile"))[0] == 303    # every other one ended
    assert (await (await new_panel()).login("alice", "a new password!")).status == 303
    entries = await audit.entries(app_conn, entity="user", action="passwd")
    assert entries
    assert entries[0].actor == "alice"
    assert "password_hash" not in str(entries[0].after)


@pytest.mark.both_engines
async def test_throttle_blocks_a_user_name_then_an_admin_lifts_it(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    await make_user("guard", "blocklist")
    attacker = await new_panel()
    for _ in range(2):
        assert (await attacker.login("alice", "guess guess")).status == 401
    third = await attacker.login("alice", "guess guess")         # the limit (3) is reached
    assert third.status == 429
    assert BLOCKED in await third.text()
    # Blocked: even the right password is refused while the block lasts.
    right = await attacker.login("alice")
    assert right.status == 429
    [block] = await throttle.active(app_conn)
    assert (block.kind, block.value) == ("user", "alice")
    guard = await new_panel()
    assert (await guard.login("guard")).status == 303
    status, page = await guard.get("/blocklist")
    assert status == 200
    assert "alice" in page
    status, _, _ = await guard.post(f"/blocklist/{block.id}/lift")
    assert status == 303
    assert await throttle.active(app_conn) == []
    assert (await attacker.login("alice")).status == 303
    lifted = await audit.entries(app_conn, entity="login_block", action="lift")
    assert lifted
    assert lifted[0].actor == "guard"


async def test_throttle_blocks_an_address_across_user_names(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    attacker = await new_panel()
    for index in range(4):
        assert (await attacker.login(f"user{index}", "guess guess")).status == 401
    assert (await attacker.login("user9", "guess guess")).status == 429   # 5th failure from 127.0.0.1
    assert [b.kind for b in await throttle.active(app_conn)] == ["ip"]
    assert (await attacker.login("alice")).status == 429


async def test_sign_in_works_with_unknown_and_empty_fields_without_crashing(client, make_user) -> None:
    page = await (await client.get("/login")).text()
    for data in ({}, {"name": "x" * 5000, "password": "y" * 5000}, {"name": "\x00", "password": "\u202e"}):
        response = await client.post("/login", data={**data, "csrf_token": csrf_of(page)}, allow_redirects=False)
        assert response.status in (401, 429)


async def test_security_headers_everywhere(client, admin_panel) -> None:
    for path in ("/login", "/", "/domains", "/no/such/page", "/api/v1/openapi.json", "/api/v1/domains"):
        response = await admin_panel.client.get(path, allow_redirects=False)
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"
    page = await (await client.get("/login")).text()
    static = [part.split('"')[0] for part in page.split('src="')[1:] + page.split('href="')[1:]
              if part.startswith("/static/")]
    assert static, "the page loads its CSS/JS from /static/"
    for path in static:
        response = await client.get(path)
        assert response.status == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
    # No inline script or style anywhere: the CSP would block it.
    for path in ("/", "/domains", "/domains/new", "/relays/new", "/profile"):
        text = (await admin_panel.get(path))[1]
        assert "<script>" not in text and "style=" not in text and "onclick" not in text.lower()


async def test_sessions_expire(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    assert (await panel.login("alice")).status == 303
    other = await new_panel()
    assert (await other.login("alice")).status == 303
    await app_conn.execute("UPDATE session SET expires_at = '2000-01-01T00:00:00Z'")
    assert (await panel.get("/"))[0] == 303          # expired: signed out (and that row deleted)
    async with app_conn.execute("SELECT count(*) FROM session") as cur:
        assert (await cur.fetchone())[0] == 1
    assert (await (await new_panel()).login("alice")).status == 303
    async with app_conn.execute("SELECT count(*) FROM session") as cur:
        assert (await cur.fetchone())[0] == 1        # a sign-in purged the other expired one


async def test_sign_in_events_are_in_the_audit_log(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    panel = await new_panel()
    assert (await panel.login("alice", "guess guess")).status == 401
    assert (await panel.login("nobody", "guess guess")).status == 401
    assert (await panel.login("alice")).status == 303
    assert (await panel.post("/logout"))[0] == 303
    for _ in range(3):
        await panel.login("alice", "guess guess")           # the 3rd is the name's limit: a lockout
    assert (await panel.login("alice")).status == 429       # refused while blocked
    events = [(e.action, e.entity_key, e.origin, e.remote, e.after) for e in
              reversed(await audit.entries(app_conn, entity="sign_in"))]
    assert events == [
        ("failed", "alice", "panel", "127.0.0.1", {"step": "password"}),
        ("failed", "nobody", "panel", "127.0.0.1", {"step": "password"}),
        ("signed-in", "alice", "panel", "127.0.0.1", {"factors": "password"}),
        ("signed-out", "alice", "panel", "127.0.0.1", None),
        *[("failed", "alice", "panel", "127.0.0.1", {"step": "password"})] * 3,
        ("refused", "alice", "panel", "127.0.0.1", {"reason": "blocked by the sign-in throttle"}),
    ]
    [lockout] = await audit.entries(app_conn, entity="login_block", action="block")
    assert lockout.entity_key == "user:alice"
    # No password ever reaches the log.
    assert "guess guess" not in str(await audit.entries(app_conn)) and PASSWORD not in str(await audit.entries(app_conn))


async def test_blocklist_keeps_failures_a_success_followed_and_marks_them(new_panel, make_user, app_conn) -> None:
    await make_user("alice", "domains")
    await make_user("guard", "blocklist")
    panel = await new_panel()
    for _ in range(2):
        assert (await panel.login("alice", "typo typo")).status == 401
    assert (await panel.login("alice")).status == 303
    listed = await throttle.failures(app_conn)
    assert [(f.username, f.cleared_at is not None) for f in listed] == [("alice", True), ("alice", True)]
    guard = await new_panel()
    await guard.login("guard")
    page = (await guard.get("/blocklist"))[1]
    assert page.count("no longer counts towards a block") == 2
    # Marked failures no longer count: two more typos do not reach the limit of 3.
    other = await new_panel()
    for _ in range(2):
        assert (await other.login("alice", "typo typo")).status == 401
    assert await throttle.active(app_conn) == []
    assert (await other.login("alice")).status == 303


async def test_head_is_answered_for_every_get_route_and_server_names_no_version(admin_panel) -> None:
    app = admin_panel.client.server.app
    gets = {r.resource.name for r in app.router.routes() if r.method == "GET" and r.resource.name}
    heads = {r.resource.name for r in app.router.routes() if r.method == "HEAD" and r.resource.name}
    assert gets <= heads
    for path in ("/", "/domains", "/relays", "/profile", "/logs", "/api/v1/openapi.json"):
        got = await admin_panel.client.get(path, allow_redirects=False)
        head = await admin_panel.client.head(path, allow_redirects=False)
        assert head.status == got.status == 200, path
        assert await head.read() == b"" and head.headers["Content-Type"] == got.headers["Content-Type"]
        assert head.headers["Server"] == got.headers["Server"] == "mrod"
    for path in ("/no/such/page", "/static/app.css", "/api/v1/domains"):
        response = await admin_panel.client.head(path)
        assert response.headers["Server"] == "mrod" and "aiohttp" not in str(response.headers)
