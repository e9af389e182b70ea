"""The policy service's per-domain settings — pause (with a reason), queue quotas, what
unknown recipients get while the primary is down — set through the domain form and the JSON
API: validated by mrod.entities.domains, errors beside the fields, nothing half-written, a PATCH that
leaves absent fields alone, domains_own limited to its own domains, the reason escaped."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from mrod.admin import api
from mrod.admin.openapi import build
from mrod.entities import audit, domains, relays, tokens
from mrod.infra import enums
from tests.data import SYSTEM
from tests.conftest import make_config

HOSTILE_REASON = "<script>\"x'"
DEFAULT_MESSAGES = 500            # [policy] default_quota_messages in these tests; bytes: 0 (no limit)
# The rest of a valid edit form (the panel's form always sends every field).
BASE = {"route": "relay", "relay": "primary", "recipients": "verify", "enabled": "1"}


@pytest.fixture
def panel_cfg(tmp_path: Path, database: dict[str, str]):
    return make_config(tmp_path, admin={"bcrypt_rounds": 4},
                       policy={"default_quota_messages": DEFAULT_MESSAGES, "default_quota_bytes": 0})


async def _shop(conn: Any, **spec: Any) -> domains.Domain:
    await relays.add(conn, SYSTEM, name="primary", host="mx1.example.net")
    return await domains.add(conn, SYSTEM, "shop.example", relay="primary", recipients="verify", **spec)


def _setting(page: str, name: str) -> str:
    """The text of the domain page's <dd data-setting=NAME>, unescaped, tags dropped."""
    found = re.search(rf'<dd data-setting="{name}">(.*?)</dd>', page, re.DOTALL)
    assert found, f"no {name} on the domain page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def _field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    assert found, f"no error beside {field}"
    assert re.search(rf'aria-describedby="[^"]*{field}-error', page)
    return html.unescape(found.group(1))


def _policy(domain: domains.Domain) -> tuple[Any, ...]:
    return (domain.paused, domain.pause_reason, domain.quota_messages, domain.quota_bytes, domain.verify_when_down)


async def _bearer(conn: Any, user_id: int) -> dict[str, str]:
    secret, _ = await tokens.create(conn, SYSTEM, user_id, "policy")
    return {"Authorization": f"Bearer {secret}"}


# -- the panel ---------------------------------------------------------------------------------


@pytest.mark.both_engines
async def test_pause_quota_and_when_down_set_and_cleared_through_the_form(admin_panel, app_conn) -> None:
    await _shop(app_conn)
    status, page = await admin_panel.get("/domains/shop.example")
    assert _setting(page, "paused") == "no"
    assert _setting(page, "quota") == f"messages: default ({DEFAULT_MESSAGES}) · bytes: default (no limit)"
    assert _setting(page, "when-down") == "unknown addresses are accepted (accept)"

    status, _, _ = await admin_panel.post("/domains/shop.example/edit", BASE | {
        "paused": "1", "pause_reason": "primary migration until Monday", "quota_messages": "200",
        "quota_bytes": "0", "verify_when_down": "defer"})
    assert status == 303
    domain = await domains.get(app_conn, "shop.example")
    assert _policy(domain) == (True, "primary migration until Monday", 200, 0, "defer")
    [change] = await audit.entries(app_conn, entity="domain", action="update")
    assert change.before is not None
    assert change.after is not None
    assert change.origin == "panel"
    assert change.before["paused"] is False
    assert change.after["quota_messages"] == 200
    page = (await admin_panel.get("/domains/shop.example"))[1]
    assert _setting(page, "paused") == "paused — new mail is deferred: primary migration until Monday"
    assert _setting(page, "quota") == "messages: 200 · bytes: no limit"
    assert _setting(page, "when-down") == "unknown addresses are deferred (defer)"
    # The edit form shows what is set.
    form = (await admin_panel.get("/domains/shop.example/edit"))[1]
    assert '<input id="paused" name="paused" type="checkbox" value="1" checked' in form
    assert 'name="pause_reason" type="text" value="primary migration until Monday"' in form
    assert 'name="quota_messages" type="text" value="200"' in form
    assert 'name="quota_bytes" type="text" value="0"' in form
    assert '<option value="defer" selected>' in form

    # Unpaused (the reason goes with it), quotas back to the default: empty, or the word "default".
    status, _, _ = await admin_panel.post("/domains/shop.example/edit", BASE | {
        "pause_reason": "left over", "quota_messages": "", "quota_bytes": "default", "verify_when_down": "accept"})
    assert status == 303
    assert _policy(await domains.get(app_conn, "shop.example")) == (False, None, None, None, "accept")
    page = (await admin_panel.get("/domains/shop.example"))[1]
    assert _setting(page, "paused") == "no"
    assert _setting(page, "quota") == f"messages: default ({DEFAULT_MESSAGES}) · bytes: default (no limit)"


async def test_the_add_form_takes_the_settings_too(admin_panel, app_conn) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    status, _, _ = await admin_panel.post("/domains/new", BASE | {
        "name": "new.example", "paused": "1", "pause_reason": "not live yet", "quota_messages": "0",
        "quota_bytes": "1048576", "verify_when_down": "defer"})
    assert status == 303
    assert _policy(await domains.get(app_conn, "new.example")) == (True, "not live yet", 0, 1048576, "defer")
    # Paused without a reason is fine: the reason is optional.
    status, _, _ = await admin_panel.post("/domains/new", BASE | {"name": "quiet.example", "paused": "1"})
    assert status == 303
    assert _policy(await domains.get(app_conn, "quiet.example")) == (True, None, None, None, "accept")


async def test_the_when_down_setting_is_shown_only_for_verify_domains(admin_panel, app_conn) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    await domains.add(app_conn, SYSTEM, "all.example", relay="primary", verify_when_down="defer")
    page = (await admin_panel.get("/domains/all.example"))[1]
    assert 'data-setting="when-down"' not in page and 'data-setting="quota"' in page


@pytest.mark.parametrize(("field", "value", "message"), [
    ("quota_messages", "-1", "whole number from 0"),
    ("quota_messages", "lots", "whole number from 0"),
    ("quota_messages", "1e3", "whole number from 0"),
    ("quota_messages", "²", "whole number from 0"),                 # a digit to str.isdigit(), not to int()
    ("quota_messages", "9" * 30, "whole number from 0"),          # more than an SQLite INTEGER holds
    ("quota_bytes", "-5", "whole number from 0"),
    ("pause_reason", "x" * 201, "at most 200 characters"),
    ("pause_reason", "two\nlines", "one line"),
    ("verify_when_down", "maybe", "not one of accept, defer"),
])
async def test_a_refused_value_shows_beside_its_field_and_changes_nothing(admin_panel, app_conn, field: str,
                                                                          value: str, message: str) -> None:
    before = await _shop(app_conn, paused=True, pause_reason="old reason", quota_messages=7)
    entries = await audit.count(app_conn)
    # Every other setting in the form is valid and different: none of them may be written either.
    form = BASE | {"paused": "1", "pause_reason": "new reason", "quota_messages": "300", "quota_bytes": "4096",
                   "verify_when_down": "defer", "include_subdomains": "1"} | {field: value}
    status, page, _ = await admin_panel.post("/domains/shop.example/edit", form)
    assert status == 400
    assert message in _field_error(page, field)
    assert await domains.get(app_conn, "shop.example") == before
    assert await audit.count(app_conn) == entries
    # Adding refuses it the same way, and adds nothing.
    status, page, _ = await admin_panel.post("/domains/new", form | {"name": "other.example"})
    assert status == 400 and message in _field_error(page, field)
    assert (await domains.count(app_conn))["total"] == 1


async def test_a_pause_reason_is_escaped_wherever_it_is_shown(admin_panel, app_conn) -> None:
    await _shop(app_conn)
    status, _, _ = await admin_panel.post("/domains/shop.example/edit", BASE | {
        "paused": "1", "pause_reason": HOSTILE_REASON, "verify_when_down": "accept"})
    assert status == 303 and (await domains.get(app_conn, "shop.example")).pause_reason == HOSTILE_REASON
    escaped = "&lt;script&gt;&#34;x&#39;"
    pages = {path: (await admin_panel.get(path))[1]
             for path in ("/domains/shop.example", "/domains/shop.example/edit", "/domains")}
    for path, page in pages.items():
        assert "<script>" not in page and escaped in page, path
    assert _setting(pages["/domains/shop.example"], "paused").endswith(": " + HOSTILE_REASON)
    assert f'value="{escaped}"' in pages["/domains/shop.example/edit"]
    assert f'title="{escaped}">paused</span>' in pages["/domains"]
    # A refused form shows what was typed, escaped too.
    status, page, _ = await admin_panel.post("/domains/shop.example/edit", BASE | {
        "paused": "1", "pause_reason": HOSTILE_REASON * 20})
    assert status == 400 and "<script>" not in page and escaped * 3 in page


# -- the API -----------------------------------------------------------------------------------


async def test_the_api_sets_the_settings_and_a_patch_leaves_absent_ones_alone(admin_panel, app_conn) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    headers = await _bearer(app_conn, 1)
    client = admin_panel.client
    response = await client.post("/api/v1/domains", headers=headers, json={
        "name": "shop.example", "relay": "primary", "recipients": "verify", "paused": True,
        "pause_reason": "primary migration", "quota_messages": 100, "quota_bytes": None, "verify_when_down": "defer"})
    body = await response.json()
    assert response.status == 201, body
    assert (body["paused"], body["pause_reason"], body["quota_messages"], body["quota_bytes"],
            body["verify_when_down"]) == (True, "primary migration", 100, None, "defer")

    async def patch(change: dict[str, Any]) -> tuple[Any, ...]:
        response = await client.patch("/api/v1/domains/shop.example", json=change, headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        stored = _policy(await domains.get(app_conn, "shop.example"))
        assert stored == (body["paused"], body["pause_reason"], body["quota_messages"], body["quota_bytes"],
                          body["verify_when_down"])
        return stored

    assert await patch({"quota_bytes": 0}) == (True, "primary migration", 100, 0, "defer")
    assert await patch({"quota_messages": None}) == (True, "primary migration", None, 0, "defer")
    assert await patch({"paused": False, "pause_reason": None}) == (False, None, None, 0, "defer")
    assert await patch({"paused": True, "pause_reason": "hold back"}) == (True, "hold back", None, 0, "defer")
    assert await patch({"verify_when_down": "accept"}) == (True, "hold back", None, 0, "accept")
    assert await patch({"quota_messages": 25, "quota_bytes": None}) == (True, "hold back", 25, None, "accept")
    assert await patch({"paused": False}) == (False, None, 25, None, "accept")   # unpaused: the reason goes
    assert await patch({"enabled": False}) == (False, None, 25, None, "accept")
    response = await client.get("/api/v1/domains/shop.example", headers=headers)
    assert (await response.json())["quota_messages"] == 25
    assert {e.origin for e in await audit.entries(app_conn, entity="domain")} == {"api"}


QUOTA_REFUSED = "must be a whole number from 0 (no limit)"


@pytest.mark.parametrize(("change", "message"), [
    ({"quota_messages": -1}, QUOTA_REFUSED), ({"quota_messages": "lots"}, QUOTA_REFUSED),
    ({"quota_messages": 1.5}, QUOTA_REFUSED), ({"quota_messages": True}, QUOTA_REFUSED),
    ({"quota_bytes": 2**64}, QUOTA_REFUSED), ({"paused": "yes"}, "must be true or false"),
    ({"pause_reason": "x" * 201}, "at most 200 characters"), ({"pause_reason": 5}, "at most 200 characters"),
    ({"pause_reason": "a\u0007b"}, "one line"), ({"verify_when_down": "maybe"}, "is not one of accept, defer"),
    ({"quota_messages": 5, "verify_when_down": "maybe"}, "is not one of accept, defer"),   # neither written
])
async def test_the_api_refuses_bad_values_with_the_field_and_writes_nothing(admin_panel, app_conn,
                                                                            change: dict[str, Any],
                                                                            message: str) -> None:
    before = await _shop(app_conn, paused=True, pause_reason="old reason", quota_messages=7)
    headers = await _bearer(app_conn, 1)
    entries = await audit.count(app_conn)
    response = await admin_panel.client.patch("/api/v1/domains/shop.example", json=change, headers=headers)
    body = await response.json()
    # Refused by mrod.entities.domains' own check (not as an unknown field), naming the field.
    assert response.status == 400 and body["field"] == list(change)[-1] and message in body["error"], body
    assert await domains.get(app_conn, "shop.example") == before
    assert await audit.count(app_conn) == entries


# -- permissions -------------------------------------------------------------------------------


async def test_domains_own_sets_them_only_on_its_own_domains(new_panel, make_user, app_conn) -> None:
    owner = await make_user("owner", "domains_own")
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    theirs = await domains.add(app_conn, SYSTEM, "theirs.example", relay="primary")
    await domains.add(app_conn, SYSTEM, "mine.example", relay="primary", owner_id=owner.id)
    panel = await new_panel()
    assert (await panel.login("owner")).status == 303
    pause = {"route": "relay", "relay": "primary", "recipients": "accept_all", "enabled": "1", "paused": "1",
             "pause_reason": "mine now"}
    assert (await panel.get("/domains/theirs.example/edit"))[0] == 403
    status, _, _ = await panel.post("/domains/theirs.example/edit", pause)
    assert status == 403
    headers = await _bearer(app_conn, owner.id)
    response = await panel.client.patch("/api/v1/domains/theirs.example", headers=headers,
                                        json={"paused": True})
    assert response.status == 403
    assert await domains.get(app_conn, "theirs.example") == theirs
    # Their own domain: allowed, through both doors.
    status, _, _ = await panel.post("/domains/mine.example/edit", pause)
    assert status == 303
    assert _policy(await domains.get(app_conn, "mine.example")) == (True, "mine now", None, None, "accept")
    response = await panel.client.patch("/api/v1/domains/mine.example", headers=headers,
                                        json={"paused": False, "pause_reason": None})
    assert response.status == 200
    assert _policy(await domains.get(app_conn, "mine.example")) == (False, None, None, None, "accept")


async def test_only_domains_holders_set_queue_quotas(new_panel, make_user, app_conn) -> None:
    """A quota guards the disk every domain shares: a domains_own user can neither lift nor
    change it, through the form (fields not offered, values posted anyway ignored) or the API."""
    owner = await make_user("owner", "domains_own")
    await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    await domains.add(app_conn, SYSTEM, "mine.example", relay="primary", owner_id=owner.id, quota_messages=50)
    panel = await new_panel()
    assert (await panel.login("owner")).status == 303
    status, form = await panel.get("/domains/mine.example/edit")
    assert status == 200 and 'name="quota_messages"' not in form and 'name="quota_bytes"' not in form
    assert "Queue quota: messages 50" in form
    status, _, _ = await panel.post("/domains/mine.example/edit", {
        "route": "relay", "relay": "primary", "recipients": "accept_all", "enabled": "1",
        "quota_messages": "0", "quota_bytes": "0"})
    assert status == 303
    assert _policy(await domains.get(app_conn, "mine.example"))[2:4] == (50, None)
    headers = await _bearer(app_conn, owner.id)
    before = await domains.get(app_conn, "mine.example")
    for change in ({"quota_messages": 0}, {"quota_bytes": None}):
        response = await panel.client.patch("/api/v1/domains/mine.example", headers=headers, json=change)
        assert response.status == 403 and "permission domains" in (await response.json())["error"]
    response = await panel.client.post("/api/v1/domains", headers=headers,
                                       json={"name": "new.example", "relay": "primary", "quota_messages": 0})
    assert response.status == 403
    assert await domains.get(app_conn, "mine.example") == before
    assert not (await domains.search(app_conn, q="new.example")).domains


# -- the OpenAPI document ----------------------------------------------------------------------


async def test_openapi_describes_every_domain_field_the_api_takes_and_gives(admin_panel, app_conn) -> None:
    schemas = build()["components"]["schemas"]
    for name in ("DomainInput", "DomainChange"):
        assert set(api.DOMAIN_FIELDS) <= set(schemas[name]["properties"]), name
    given = api.domain_json(await _shop(app_conn, quota_bytes=0))
    assert set(given) <= set(schemas["Domain"]["properties"])
    described = schemas["DomainChange"]["properties"]
    assert described["verify_when_down"]["enum"] == list(enums.VERIFY_WHEN_DOWN)
    assert described["quota_messages"]["type"] == ["integer", "null"]
    assert "default" in described["quota_messages"]["description"]
    assert described["pause_reason"]["maxLength"] == 200

