"""A refused form shows every field's error at once (not one per submit) and writes nothing."""

from __future__ import annotations

import re

from mrod.entities import relays, users

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


def users_actor():
    from mrod.entities.audit import Actor

    return Actor.system("test")
