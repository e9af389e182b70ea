"""The Notifications page and API: the channels with their state, the messages sent, a test
through a channel (to a real webhook receiver on loopback), the permission, bad values."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest

from mrod.entities import users
from tests.admin.test_api import _token
from tests.conftest import make_config
from tests.harness.webhook import WebhookReceiver


@pytest.fixture
async def hook():
    async with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def panel_cfg(tmp_path: Path, database: dict[str, str], hook: WebhookReceiver):
    return make_config(tmp_path, admin={"bcrypt_rounds": 4}, notify={"webhook": {"url": hook.url}})


async def test_the_page_sends_a_test_and_shows_how_it_went(admin_panel: Any, hook: WebhookReceiver) -> None:
    status, page = await admin_panel.get("/notifications")
    assert status == 200 and 'data-channel="webhook"' in page and "unused" in page
    assert 'data-channel="email"' in page          # owners are told by mail by default
    status, _, response = await admin_panel.post("/notifications/test", {"channel": "webhook"})
    assert status == 303 and response.headers["Location"] == "/notifications"
    _, page = await admin_panel.get("/notifications")
    assert f"Test sent through webhook to {hook.url}: delivered." in html.unescape(page)
    assert 'class="state up notice-status">delivered' in page
    [posted] = await hook.wait_for(1)
    assert posted.json["event"] == "test" and "sent by root" in posted.json["text"]

    hook.answers = [500]
    await admin_panel.post("/notifications/test", {"channel": "webhook"})
    _, page = await admin_panel.get("/notifications")
    assert "failed: webhook answered HTTP 500" in html.unescape(page)
    assert 'channel-state">failing' in page

    await admin_panel.post("/notifications/test", {"channel": "email"})   # no operator address
    _, page = await admin_panel.get("/notifications")
    assert "no operator address to test" in page


async def test_the_page_needs_the_logs_permission(new_panel: Any, make_user: Any) -> None:
    await make_user("owner", "domains_own")
    panel = await new_panel()
    await panel.login("owner")
    assert (await panel.get("/notifications"))[0] == 403
    assert (await panel.post("/notifications/test", {"channel": "webhook"}))[0] == 403


async def test_the_api_lists_and_tests(admin_panel: Any, hook: WebhookReceiver, app_conn: Any) -> None:
    token = await _token(admin_panel)
    auth = {"Authorization": f"Bearer {token}"}
    client = admin_panel.client
    reply = await client.post("/api/v1/notifications/test/webhook", headers=auth)
    assert reply.status == 200 and (await reply.json())["ok"] is True
    listed = await (await client.get("/api/v1/notifications?status=delivered", headers=auth)).json()
    assert listed["total"] == 1 and listed["items"][0]["recipient"] == hook.url
    assert listed["channels"][0]["channel"] in ("email", "webhook")
    assert {c["channel"]: c["state"] for c in listed["channels"]}["webhook"] == "ok"
    bad = await client.get("/api/v1/notifications?status=lost", headers=auth)
    assert bad.status == 400 and "status" in (await bad.json())["error"]
    bad = await client.post("/api/v1/notifications/test/pager", headers=auth)
    assert bad.status == 400 and "not a channel" in (await bad.json())["error"]

    reply = await client.patch("/api/v1/users/root", json={"email": "Root@Example.net"}, headers=auth)
    assert reply.status == 200 and (await reply.json())["email"] == "root@example.net"
    assert (await users.get(app_conn, "root")).email == "root@example.net"
    bad = await client.patch("/api/v1/users/root", json={"email": "@example.net"}, headers=auth)
    assert bad.status == 400
    reply = await client.patch("/api/v1/users/root", json={"email": None}, headers=auth)
    assert (await reply.json())["email"] is None
