"""Every route x every role: allowed or forbidden, decided on the server.

Each role is a user holding one permission (or none, or admin), signed in through the panel
and holding an API token. Objects come in pairs — one owned by someone else, one owned by
the role's user — so ``domains_own`` / ``relay_own`` are checked on both. A test also checks
that the table names every route the app has, so a new route cannot slip past.
"""

from __future__ import annotations

from typing import Any

import pytest

from mrod.admin.app import create_app
from mrod.entities import domains, relays, throttle, tokens, users
from mrod.recipientsources import sources as recipientsources, spec
from tests.data import SYSTEM
from tests.admin.conftest import Panel

ANY = {"*"}                       # every signed-in user
PUBLIC = {"public"}               # no sign-in needed
DOM = {"domains", "domains_own"}
REL = {"relay", "relay_own"}
ADMIN = {"admin"}                 # administrators only (recipient sources read files on the host)
ROLES = ["anonymous", "none", "usermgr", "domains", "domains_own", "relay", "relay_own", "logs", "blocklist",
         "queue", "admin"]

# (route name, method, URL parts, form/JSON body, who may) — in order: destructive ones last.
CASES: list[tuple[str, str, dict[str, str], Any, set[str]]] = [
    ("login", "GET", {}, None, PUBLIC),
    ("login", "POST", {}, {"name": "x", "password": "y"}, PUBLIC),   # no login CSRF cookie: refused for all
    ("login_code", "GET", {}, None, PUBLIC),             # no sign-in waiting for a code: back to /login
    ("login_code", "POST", {}, {"code": "123456"}, PUBLIC),   # no login CSRF cookie: refused for all
    ("dashboard", "GET", {}, None, ANY),
    ("domains", "GET", {}, None, DOM),
    ("domain_new", "GET", {}, None, DOM),
    ("domain_new", "POST", {}, {"name": ""}, DOM),
    ("domain_bulk", "GET", {}, None, DOM),
    ("domain_bulk", "POST", {}, {"lines": ""}, DOM),
    ("domain_bulk_edit", "POST", {}, {"domain": "other.example"}, DOM),     # nothing chosen: refused, 400
    ("domain_export", "GET", {}, None, DOM),
    ("domain_import", "GET", {}, None, DOM),
    ("domain_import", "POST", {}, {"csv": ""}, DOM),
    ("domain", "GET", {"name": "other.example"}, None, {"domains"}),
    ("domain", "GET", {"name": "mine.example"}, None, DOM),
    ("domain_edit", "GET", {"name": "other.example"}, None, {"domains"}),
    ("domain_edit", "GET", {"name": "mine.example"}, None, DOM),
    ("domain_edit", "POST", {"name": "other.example"}, {"route": "nowhere"}, {"domains"}),
    ("domain_edit", "POST", {"name": "mine.example"}, {"route": "nowhere"}, DOM),
    ("domain_delete", "GET", {"name": "other.example"}, None, {"domains"}),
    ("domain_delete", "POST", {"name": "other.example"}, {}, {"domains"}),      # no confirm: asks
    ("domain_delete", "POST", {"name": "mine.example"}, {}, DOM),
    ("recipient_add", "POST", {"name": "other.example"}, {"address": ""}, {"domains"}),
    ("recipient_add", "POST", {"name": "mine.example"}, {"address": ""}, DOM),
    ("recipient_remove", "POST", {"name": "other.example"}, {"address": "x@other.example"}, {"domains"}),
    ("relays", "GET", {}, None, REL),
    ("relay_new", "GET", {}, None, REL),
    ("relay_new", "POST", {}, {"name": ""}, REL),
    ("relay", "GET", {"id": "shared"}, None, {"relay"}),
    ("relay", "GET", {"id": "mine"}, None, REL),
    ("relay", "POST", {"id": "shared"}, {"name": "", "host": ""}, {"relay"}),
    ("relay", "POST", {"id": "mine"}, {"name": "", "host": ""}, REL),
    ("relay_delete", "GET", {"id": "shared"}, None, {"relay"}),
    ("relay_delete", "POST", {"id": "shared"}, {}, {"relay"}),
    ("relay_test", "POST", {"id": "shared"}, {}, {"relay"}),
    ("relay_test", "POST", {"id": "mine"}, {}, REL),
    ("users", "GET", {}, None, {"usermgr"}),
    ("user_new", "GET", {}, None, {"usermgr"}),
    ("user_new", "POST", {}, {"name": ""}, {"usermgr"}),
    ("user", "GET", {"id": "victim"}, None, {"usermgr"}),
    ("user", "POST", {"id": "victim"}, {"password": "aaaaaaaaaaaa", "password2": "bbbbbbbbbbbb"}, {"usermgr"}),
    ("user_delete", "GET", {"id": "victim"}, None, {"usermgr"}),
    ("user_delete", "POST", {"id": "victim"}, {}, {"usermgr"}),
    ("recipient_sources", "GET", {}, None, ADMIN),
    ("recipient_source_new", "GET", {}, None, ADMIN),
    ("recipient_source_new", "POST", {}, {"name": ""}, ADMIN),
    ("recipient_source", "GET", {"name": "src"}, None, ADMIN),
    ("recipient_source", "POST", {"name": "src"}, {"name": ""}, ADMIN),
    ("recipient_source_sync", "POST", {"name": "src"}, {}, ADMIN),      # nothing listens there: a quick failure
    ("recipient_source_accept", "POST", {"name": "src"}, {}, ADMIN),
    ("recipient_source_use", "POST", {"name": "src"}, {"use": "this", "use_domain": "other.example"}, ADMIN),
    ("logs", "GET", {}, None, {"logs"}),
    ("blocklist", "GET", {}, None, {"blocklist"}),
    ("bind_import", "GET", {}, None, {"domains"}),
    ("bind_import_preview", "POST", {}, {}, {"domains"}),     # [bind] named_conf is absent here: a quick error
    ("bind_import_run", "POST", {}, {}, {"domains"}),
    ("dns_checks", "GET", {}, None, DOM),
    ("trust_kit", "GET", {}, None, {"relay"}),
    ("mta_sts", "GET", {}, None, DOM),
    ("queue", "GET", {}, None, {"queue"}),
    ("queue_refresh", "POST", {}, {}, {"queue"}),          # no Postfix config here: a quick error, flashed
    ("notifications", "GET", {}, None, {"logs"}),
    ("notification_test", "POST", {}, {"channel": "webhook"}, {"logs"}),   # no webhook set up: flashed
    ("queue_flush", "POST", {}, {"domain": "other.example"}, {"queue"}),
    ("domain_hold", "POST", {"name": "other.example"}, {}, {"queue"}),       # no Postfix here: stored, said
    ("domain_release", "POST", {"name": "other.example"}, {}, {"queue"}),
    ("metrics", "GET", {}, None, {"queue"}),
    # Postfix is not running here: the pages say so (200), the API answers 503; nothing chosen: refused.
    ("queue_messages", "GET", {}, None, {"queue"}),
    ("queue_messages", "POST", {}, {"action": "hold"}, {"queue"}),
    ("domain_queue", "GET", {"name": "other.example"}, None, {"domains", "queue"}),
    ("domain_queue", "GET", {"name": "mine.example"}, None, DOM | {"queue"}),
    ("domain_queue", "POST", {"name": "other.example"}, {"action": "hold"}, {"domains", "queue"}),
    ("domain_queue", "POST", {"name": "mine.example"}, {"action": "hold"}, DOM | {"queue"}),
    ("block_lift", "POST", {"id": "block"}, {}, {"blocklist"}),
    ("profile", "GET", {}, None, ANY),
    ("profile_password", "POST", {}, {}, ANY),
    ("token_create", "POST", {}, {"token_name": ""}, ANY),
    ("sessions_end", "POST", {}, {}, ANY),
    ("two_factor", "GET", {}, None, ANY),
    ("two_factor_confirm", "POST", {}, {"code": "000000"}, ANY),
    ("two_factor_disable", "POST", {}, {"current": "wrong"}, ANY),
    # -- API (bearer token) --
    ("api_openapi", "GET", {}, None, PUBLIC),
    ("api_me", "GET", {}, None, ANY),
    ("api_domains", "GET", {}, None, DOM),
    ("api_domains", "POST", {}, {}, DOM),
    ("api_domains_bulk", "POST", {}, {"domains": []}, DOM),
    ("api_domains_bulk_update", "POST", {}, {"domains": ["mine.example"], "set": {}}, DOM),   # nothing to set: 400
    ("api_domains_export", "GET", {}, None, DOM),
    ("api_domains_import", "POST", {}, None, DOM),              # an empty body: 400
    ("api_domain", "GET", {"name": "other.example"}, None, {"domains"}),
    ("api_domain", "GET", {"name": "mine.example"}, None, DOM),
    ("api_domain", "PATCH", {"name": "other.example"}, {}, {"domains"}),
    ("api_domain", "PATCH", {"name": "mine.example"}, {}, DOM),
    ("api_domain_told", "GET", {"name": "other.example"}, None, {"domains"}),
    ("api_domain_told", "GET", {"name": "mine.example"}, None, DOM),
    ("api_recipients", "GET", {"name": "other.example"}, None, {"domains"}),
    ("api_recipients", "POST", {"name": "other.example"}, {}, {"domains"}),
    ("api_recipient", "DELETE", {"name": "other.example", "address": "x@other.example"}, None, {"domains"}),
    ("api_relays", "GET", {}, None, REL),
    ("api_relays", "POST", {}, {}, REL),
    ("api_relay", "GET", {"relay": "shared"}, None, {"relay"}),
    ("api_relay", "GET", {"relay": "mine"}, None, REL),
    ("api_relay", "PATCH", {"relay": "shared"}, {}, {"relay"}),
    ("api_relay_test", "POST", {"relay": "shared"}, None, {"relay"}),
    ("api_users", "GET", {}, None, {"usermgr"}),
    ("api_users", "POST", {}, {}, {"usermgr"}),
    ("api_user", "GET", {"user": "victim"}, None, {"usermgr"}),
    ("api_user", "PATCH", {"user": "victim"}, {}, {"usermgr"}),
    ("api_recipient_sources", "GET", {}, None, ADMIN),
    ("api_recipient_sources", "POST", {}, {}, ADMIN),
    ("api_recipient_source", "GET", {"name": "src"}, None, ADMIN),
    ("api_recipient_source_sync", "POST", {"name": "nosuch"}, None, ADMIN),
    ("api_recipient_source_accept", "POST", {"name": "nosuch"}, None, ADMIN),
    ("api_domain_recipient_source", "PUT", {"name": "other.example"}, {"source": "src"}, ADMIN),
    ("api_relay_recipient_source", "PUT", {"relay": "shared"}, {"source": "none"}, ADMIN),
    ("api_audit", "GET", {}, None, {"logs"}),
    ("api_checks", "GET", {}, None, DOM),
    ("api_trust_kit", "GET", {}, None, {"relay"}),
    ("api_mta_sts", "GET", {}, None, DOM),
    ("api_queue", "GET", {}, None, {"queue"}),
    ("api_queue_flush", "POST", {"name": "other.example"}, None, {"queue"}),
    ("api_relay_outages", "GET", {"relay": "shared"}, None, {"relay"}),
    ("api_relay_outages", "GET", {"relay": "mine"}, None, REL),
    ("api_domain_outages", "GET", {"name": "other.example"}, None, {"domains"}),
    ("api_domain_outages", "GET", {"name": "mine.example"}, None, DOM),
    ("api_domain_hold", "POST", {"name": "other.example"}, None, {"queue"}),
    ("api_domain_release", "POST", {"name": "other.example"}, None, {"queue"}),
    ("api_metrics", "GET", {}, None, {"queue"}),
    ("api_notifications", "GET", {}, None, {"logs"}),
    ("api_notification_test", "POST", {"channel": "webhook"}, None, {"logs"}),   # not set up: 400
    ("api_queue_messages", "GET", {}, None, {"queue", "domains_own"}),   # domains_own: their own messages
    ("api_queue_action", "POST", {"action": "hold"}, {"ids": []}, DOM | {"queue"}),
    ("api_domain", "DELETE", {"name": "gone.example"}, None, {"domains"}),
    ("api_domain", "DELETE", {"name": "mine-gone.example"}, None, DOM),
    ("api_relay", "DELETE", {"relay": "gone"}, None, {"relay"}),
    ("api_user", "DELETE", {"user": "victim"}, None, {"usermgr"}),
    ("api_recipient_source", "DELETE", {"name": "nosuch"}, None, ADMIN),
    ("recipient_source_delete", "POST", {"name": "src"}, {}, ADMIN),
    ("token_revoke", "POST", {"id": "token"}, {}, ANY),
    ("logout", "POST", {}, {}, ANY),
]


def test_the_table_names_every_route(panel_cfg) -> None:
    app = create_app(panel_cfg)
    routes = {(r.resource.name, r.method) for r in app.router.routes()
              if r.resource is not None and r.resource.name not in (None, "static") and r.method != "HEAD"}
    assert routes == {(name, method) for name, method, *_ in CASES}


async def _world(conn: Any, role: str) -> dict[str, str]:
    """The objects every case refers to; returns the placeholders' values."""
    system = SYSTEM
    root = await users.add(conn, system, "root", "root password!", is_admin=True, rounds=4)
    me = None
    if role != "anonymous":
        me = await users.add(conn, system, "tester", "tester password", rounds=4, is_admin=role == "admin",
                             perms=() if role in ("none", "admin") else (role,))
    victim = await users.add(conn, system, "victim", "victim password", rounds=4)
    shared = await relays.add(conn, system, name="shared", host="127.0.0.1", port=9, owner_id=root.id)
    mine = await relays.add(conn, system, name="mine", host="127.0.0.1", port=9, owner_id=me.id if me else None)
    await relays.add(conn, system, name="gone", host="mx.example.net", owner_id=root.id)
    await domains.add(conn, system, "other.example", relay="shared", owner_id=root.id)
    await domains.add(conn, system, "gone.example", relay="shared", owner_id=root.id)
    await domains.add(conn, system, "mine.example", relay="mine", owner_id=me.id if me else None)
    await domains.add(conn, system, "mine-gone.example", relay="mine", owner_id=me.id if me else None)
    await recipientsources.add(conn, system, spec.parse({"name": "src", "kind": "url", "url": "http://127.0.0.1:9/x"}))
    rules = throttle.Rules.from_config(type("A", (), {"login_window_minutes": 5, "login_max_failures_ip": 1,
                                                      "login_max_failures_user": 1, "login_block_minutes": 5})())
    [block, *_] = await throttle.failed(conn, rules, "192.0.2.1", "someone")
    values = {"shared": str(shared.id), "mine": str(mine.id), "victim": str(victim.id), "block": str(block.id),
              "token": "0", "bearer": ""}
    if me is not None:
        secret, record = await tokens.create(conn, system, me.id, "matrix")
        values.update(token=str(record.id), bearer=secret)
    return values


def _matrix_config(tmp_path: Any) -> Any:
    from tests.conftest import make_config

    return make_config(tmp_path, admin={"bcrypt_rounds": 4}, bind={"named_conf": str(tmp_path / "absent.conf")})


def _allowed(role: str, who: set[str]) -> bool:
    if who == PUBLIC:
        return True
    if role == "anonymous":
        return False
    return who == ANY or role == "admin" or role in who


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_for_every_role(role: str, aiohttp_client, tmp_path, app_conn) -> None:
    values = await _world(app_conn, role)
    app = create_app(_matrix_config(tmp_path))
    panel = Panel(await aiohttp_client(app))
    if role != "anonymous":
        assert (await panel.login("tester", "tester password")).status == 303
    api_headers = {"Authorization": f"Bearer {values['bearer']}"} if values["bearer"] else {}
    wrong = []
    for name, method, parts, data, who in CASES:
        url = str(app.router[name].url_for(**{k: values.get(v, v) for k, v in parts.items()}))
        if name.startswith("api_"):
            response = await panel.client.request(method, url, json=data, headers=api_headers,
                                                  allow_redirects=False)
            status = response.status
        elif method == "GET":
            status, _ = await panel.get(url)
        else:
            status, _, _ = await panel.post(url, data)
        allowed = _allowed(role, who)
        if name in ("login", "login_code") and method == "POST":
            ok = status == 403          # the sign-in form's own CSRF check, whoever posts
        elif allowed:
            ok = status < 500 and status not in (401, 403)
            if method == "GET" and name == "login_code":
                ok = status == 303          # nothing waits for a code: back to the password
            elif method == "GET" and name == "api_queue_messages":
                ok = status in (200, 503)   # read from Postfix now: 503 while it is not running
            elif method == "GET" and name != "login":
                ok = status == 200          # a page or a document, not an error that merely is not 403
        else:
            if role == "anonymous":
                denied = {401} if name.startswith("api_") else {303, 403}   # GET: to sign-in; POST: no CSRF
            else:
                denied = {403}
            ok = status in denied
        if not ok:
            wrong.append(f"{method} {url}: {status} ({'should be allowed' if allowed else 'should be refused'})")
    assert not wrong, f"role {role}:\n" + "\n".join(wrong)


async def test_the_user_form_says_what_each_permission_allows(admin_panel) -> None:
    status, page = await admin_panel.get("/users/new")
    # The queue permission also flushes (the Queue page's flush buttons, POST /api/v1/queue/.../flush).
    assert status == 200 and "see and flush the mail queue" in page
