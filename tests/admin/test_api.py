"""The JSON API: bearer tokens (shown once, stored hashed, revocable, last use recorded), the
same permission checks and core functions as the panel, JSON errors, and the OpenAPI
document kept true to the router."""

from __future__ import annotations

import re

import pytest

from mrod.admin.app import create_app
from mrod.admin.openapi import build
from mrod.entities import audit, domains, relays, sessions, tokens
from tests.data import SYSTEM



async def _token(panel, name: str = "script") -> str:
    status, page, _ = await panel.post("/profile/tokens", {"token_name": name})
    assert status == 200
    found = re.search(r'<code id="new-token" class="token">(mrod_[A-Za-z0-9_-]+)</code>', page)
    assert found, "the new token is shown once"
    return found.group(1)


@pytest.mark.both_engines
async def test_token_is_shown_once_stored_hashed_and_revocable(admin_panel, app_conn) -> None:
    token = await _token(admin_panel)
    async with app_conn.execute("SELECT token_hash, prefix FROM api_token") as cur:
        [(stored, prefix)] = await cur.fetchall()
    assert stored == sessions.digest(token)
    assert token not in stored
    assert token.startswith(f"mrod_{prefix}_")
    profile = (await admin_panel.get("/profile"))[1]
    assert token not in profile
    assert f"mrod_{prefix}_" in profile
    assert "never" in profile
    client = admin_panel.client
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert (await response.json())["name"] == "root"
    profile = (await admin_panel.get("/profile"))[1]
    assert "from 127.0.0.1" in profile                     # last use shown
    [record] = await tokens.list_for(app_conn, 1)
    assert record.last_used_at
    assert record.last_used_from == "127.0.0.1"
    status, _, _ = await admin_panel.post(f"/profile/tokens/{record.id}/revoke")
    assert status == 303
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["status"] == 401


async def test_api_refuses_cookies_and_bad_tokens(admin_panel) -> None:
    client = admin_panel.client
    # Signed in with a cookie, but the API wants a token: no CSRF exposure through cookies.
    assert (await client.get("/api/v1/domains")).status == 401
    for header in ("Bearer", "Bearer nope", "Basic cm9vdDpyb290", "Bearer mrod_" + "a" * 500):
        assert (await client.get("/api/v1/domains", headers={"Authorization": header})).status == 401
    assert (await client.get("/api/v1/openapi.json")).status == 200


@pytest.mark.both_engines
async def test_domains_relays_and_recipients_through_the_api(admin_panel, app_conn) -> None:
    headers = {"Authorization": f"Bearer {await _token(admin_panel)}"}
    client = admin_panel.client
    response = await client.post("/api/v1/relays", json={"name": "primary", "host": "mx1.example.net", "tls": "encrypt"},
                                 headers=headers)
    assert response.status == 201
    assert (await response.json())["tls"] == "encrypt"
    response = await client.post("/api/v1/domains", json={"name": "shop.example", "relay": "primary",
                                                          "recipients": "listed"}, headers=headers)
    body = await response.json()
    assert response.status == 201
    assert body["source"] == "api"
    assert body["relay_name"] == "primary"
    response = await client.post("/api/v1/domains", json={"name": "bad domain", "relay": "primary"}, headers=headers)
    assert response.status == 400
    assert (await response.json())["field"] == "domain"
    response = await client.post("/api/v1/domains", json={"name": "x.example", "relay": "primary", "evil": 1},
                                 headers=headers)
    assert response.status == 400
    assert (await response.json())["field"] == "evil"
    response = await client.post("/api/v1/domains", data=b"{not json", headers=headers)
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    response = await client.patch("/api/v1/domains/shop.example", json={"enabled": False}, headers=headers)
    assert response.status == 200
    assert (await response.json())["enabled"] is False
    response = await client.post("/api/v1/domains/shop.example/recipients", json={"address": "Sales@shop.example"},
                                 headers=headers)
    assert response.status == 201
    assert (await response.json())["address"] == "sales@shop.example"
    response = await client.get("/api/v1/domains/shop.example/told?recipient=sales", headers=headers)
    told = {row["map"]: row for row in await response.json()}
    assert told["relay_domains"]["status"] == "NOTFOUND"          # disabled
    assert told["transport"]["value"] == "relay:[mx1.example.net]:25"
    response = await client.post("/api/v1/domains/bulk", json={"domains": ["a.example", "b.example primary", "bad_x.example"],
                                                               "relay": "primary"}, headers=headers)
    report = await response.json()
    assert report["added"] == ["a.example", "b.example"]
    assert report["refused"][0]["line"] == 3
    response = await client.get("/api/v1/domains?sort=name&order=desc&limit=2", headers=headers)
    page = await response.json()
    assert page["total"] == 3
    assert [d["name"] for d in page["items"]] == ["shop.example", "b.example"]
    assert (await client.get("/api/v1/domains?limit=0", headers=headers)).status == 400
    response = await client.delete("/api/v1/relays/primary", headers=headers)
    assert response.status == 409
    assert "used by 3 domain" in (await response.json())["error"]
    response = await client.delete("/api/v1/domains/shop.example/recipients/sales@shop.example", headers=headers)
    assert response.status == 200
    response = await client.delete("/api/v1/domains/a.example", headers=headers)
    assert response.status == 200
    assert (await domains.count(app_conn))["total"] == 2
    entries = await audit.entries(app_conn, entity="domain")
    assert {e.origin for e in entries} == {"api"}
    assert {e.actor for e in entries} == {"root"}
    response = await client.get("/api/v1/audit?entity=relay", headers=headers)
    assert [e["action"] for e in (await response.json())["items"]] == ["add"]


async def test_domains_own_token_is_limited_like_the_panel(new_panel, make_user, app_conn) -> None:
    owner = await make_user("owner", "domains_own")
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    await domains.add(app_conn, SYSTEM, "theirs.example", relay="primary")
    panel = await new_panel()
    assert (await panel.login("owner")).status == 303
    headers = {"Authorization": f"Bearer {await _token(panel)}"}
    client = panel.client
    response = await client.post("/api/v1/domains", json={"name": "mine.example", "relay": "primary", "owner_id": 99},
                                 headers=headers)
    assert response.status == 400 and (await response.json())["field"] == "owner_id"
    response = await client.post("/api/v1/domains", json={"name": "mine.example", "relay": "primary"}, headers=headers)
    assert response.status == 201 and (await response.json())["owner_id"] == owner.id
    listed = await (await client.get("/api/v1/domains", headers=headers)).json()
    assert [d["name"] for d in listed["items"]] == ["mine.example"]
    assert (await client.get("/api/v1/domains/theirs.example", headers=headers)).status == 403
    assert (await client.delete("/api/v1/domains/theirs.example", headers=headers)).status == 403
    assert (await client.get("/api/v1/relays", headers=headers)).status == 403
    assert (await client.get("/api/v1/users", headers=headers)).status == 403
    assert (await domains.count(app_conn))["total"] == 2


async def test_users_through_the_api_and_no_climbing(new_panel, make_user, app_conn) -> None:
    await make_user("root", admin=True)
    await make_user("manager", "usermgr")
    panel = await new_panel()
    assert (await panel.login("manager")).status == 303
    headers = {"Authorization": f"Bearer {await _token(panel)}"}
    client = panel.client
    response = await client.post("/api/v1/users", json={"name": "helper", "password": "helper password",
                                                        "permissions": ["domains_own"]}, headers=headers)
    assert response.status == 201 and (await response.json())["permissions"] == ["domains_own"]
    response = await client.post("/api/v1/users", json={"name": "boss", "password": "boss password!",
                                                        "is_admin": True}, headers=headers)
    assert response.status == 403
    assert (await client.patch("/api/v1/users/helper", json={"is_admin": True}, headers=headers)).status == 403
    assert (await client.delete("/api/v1/users/root", headers=headers)).status == 403
    assert (await client.patch("/api/v1/users/helper", json={"permissions": ["nope"]}, headers=headers)).status == 400
    response = await client.patch("/api/v1/users/helper", json={"password": "short"}, headers=headers)
    assert response.status == 400 and (await response.json())["field"] == "password"
    response = await client.get("/api/v1/users", headers=headers)
    assert sorted(u["name"] for u in await response.json()) == ["helper", "manager", "root"]
    assert all("password" not in str(u) for u in await response.json())


def test_openapi_describes_every_api_route_and_nothing_else(panel_cfg) -> None:
    app = create_app(panel_cfg)
    routes = {(r.resource.canonical.removeprefix("/api/v1"), r.method.lower()) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/v1/") and r.method != "HEAD"}
    document = build()
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == described
    assert document["openapi"].startswith("3.")
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and "responses" in op, (path, method)
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in op.get("parameters", [])), (path, name)
    refs = set(re.findall(r"#/components/schemas/(\w+)", str(document)))
    assert refs <= set(document["components"]["schemas"])


async def test_relay_test_through_the_api_says_up_as_health_would(admin_panel, app_conn, smtp_sink) -> None:
    headers = {"Authorization": f"Bearer {await _token(admin_panel)}"}
    await relays.add(app_conn, SYSTEM, name="plain", host="127.0.0.1", port=smtp_sink.port)
    await relays.add(app_conn, SYSTEM, name="strict", host="127.0.0.1", port=smtp_sink.port, tls="encrypt")
    response = await admin_panel.client.post("/api/v1/relays/plain/test", headers=headers)
    assert response.status == 200
    assert {k: v for k, v in (await response.json()).items() if k in ("verdict", "ok", "up")} == \
        {"verdict": "ok", "ok": True, "up": True}
    response = await admin_panel.client.post("/api/v1/relays/strict/test", headers=headers)
    body = await response.json()
    assert (body["verdict"], body["ok"], body["up"]) == ("fail", False, False) and "no STARTTLS" in body["summary"]
