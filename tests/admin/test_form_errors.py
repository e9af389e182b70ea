"""A refused form shows every field's error at once (not one per submit) and writes nothing."""

from __future__ import annotations

import re

from mrod.entities import domains, relays, users

ERRORS = re.compile(r'<p class="field-error" id="([a-z_0-9]+)-error">')


async def test_relay_form_shows_every_error_at_once(admin_panel, app_conn) -> None:
    status, page, _ = await admin_panel.post("/relays/new", {"name": "dc 1", "host": "bad_host!", "port": "99999",
                                                             "protocol": "smtp", "tls": "sometimes"})
    assert status == 400 and set(ERRORS.findall(page)) == {"name", "host", "port", "tls"}
    assert await relays.list_all(app_conn) == []
    await relays.add(app_conn, users_actor(), name="dc1", host="mx1.example.net")
    relay = (await relays.list_all(app_conn))[0]
    status, page, _ = await admin_panel.post(f"/relays/{relay.id}", {"name": "", "host": "", "port": "0"})
    assert status == 400 and set(ERRORS.findall(page)) == {"name", "host", "port"}
    assert (await relays.get(app_conn, relay.id)).host == "mx1.example.net"


async def test_user_and_password_forms_show_every_error_at_once(admin_panel, app_conn) -> None:
    status, page, _ = await admin_panel.post("/users/new", [("name", "bad name!"), ("password", "short"),
                                                            ("password2", "other"), ("permissions", "nonsense")])
    assert status == 400 and set(ERRORS.findall(page)) == {"name", "password", "password2", "permissions"}
    assert [u.name for u in await users.list_all(app_conn)] == ["root"]
    status, page, _ = await admin_panel.post("/profile/password", {"current": "wrong wrong", "password": "short",
                                                                   "password2": "different"})
    assert status == 400 and set(ERRORS.findall(page)) == {"current", "password", "password2"}


async def test_domain_form_shows_every_error_at_once(admin_panel, app_conn) -> None:
    # A bad name and no relay: both marked (it used to mark only the relay); an empty name too.
    status, page, _ = await admin_panel.post("/domains/new", {"name": "bad name!", "route": "relay", "relay": "",
                                                              "recipients": "everyone", "quota_messages": "-3",
                                                              "verify_when_down": "accept", "enabled": "1"})
    assert status == 400 and set(ERRORS.findall(page)) == {"name", "relay", "recipients", "quota_messages"}
    status, page, _ = await admin_panel.post("/domains/new", {"name": "", "route": "host", "host": "",
                                                              "port": "99999", "protocol": "smtp", "tls": "never"})
    assert status == 400 and set(ERRORS.findall(page)) == {"name", "host", "port", "tls"}
    status, page, _ = await admin_panel.post("/domains/new", {"name": "ok.example", "route": "relay",
                                                              "relay": "gone", "quota_bytes": "lots"})
    assert status == 400 and set(ERRORS.findall(page)) == {"relay", "quota_bytes"}
    assert (await domains.search(app_conn)).total == 0
    await relays.add(app_conn, users_actor(), name="dc1", host="mx1.example.net")
    await domains.add(app_conn, users_actor(), "shop.example", relay="dc1")
    status, page, _ = await admin_panel.post("/domains/shop.example/edit", {
        "route": "host", "host": "bad host", "port": "0", "paused": "1", "pause_reason": "a\x01b",
        "verify_when_down": "maybe"})
    assert status == 400 and set(ERRORS.findall(page)) == {"host", "port", "pause_reason", "verify_when_down"}
    assert (await domains.get(app_conn, "shop.example")).relay_name == "dc1"


def users_actor():
    from mrod.entities.audit import Actor

    return Actor.system("test")
