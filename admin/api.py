"""The JSON API under /api/v1: bearer tokens (Authorization: Bearer mrod_...), the same
permission checks and the same core functions as the panel. Errors are JSON
``{"error": message, "status": code}`` (with ``field`` for a refused value).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, overload

from aiohttp import web

from mrod.entities import audit, recipients
from mrod.infra import names
from mrod.operations import relaytest
from mrod.entities import domainimport
from mrod.entities import domains as domaincore
from mrod.entities import relays as relaycore
from mrod.entities import users as usercore
from mrod.infra.errors import InvalidInput
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.access import (
    DOMAIN_PERMS,
    RELAY_PERMS,
    check_quota_change,
    check_relay,
    check_user_change,
    domain_owner_filter,
    load_domain,
    relay_owner_filter,
)
from mrod.admin.auth import actor, needs
from mrod.admin.domainview import told
from mrod.admin.keys import CONFIG, USER
from mrod.admin.logs import filters_of
from mrod.admin.relays import health_of

MAX_LIMIT = 1000
# A field absent from a PATCH is left as it is (mrod.entities.domains.update changes only what it is given).
DOMAIN_FIELDS = ("relay", "host", "port", "protocol", "tls", "mx", "enabled", "include_subdomains", "recipients",
                 "paused", "pause_reason", "quota_messages", "quota_bytes", "verify_when_down", "when_primary_up",
                 "queue_lifetime")
RELAY_FIELDS = ("name", "host", "port", "protocol", "tls", "when_primary_up")


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "must be a JSON object")
    return data


def only(data: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    for key in data:
        if key not in allowed:
            raise InvalidInput(key, f"is not a field here (fields: {', '.join(allowed)})")
    return data


def page_args(request: web.Request) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise InvalidInput("limit", "limit and offset must be whole numbers") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput("limit", f"limit must be 1 to {MAX_LIMIT} and offset 0 or more")
    return limit, offset


def domain_json(domain: domaincore.Domain) -> dict[str, Any]:
    return domain.as_dict() | {"display_name": domain.display_name, "route_kind": domain.route_kind}


@needs()
async def me(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    return web.json_response(user.as_dict() | {"effective_permissions": user.effective()})


# -- domains ----------------------------------------------------------------------------------


@needs(*DOMAIN_PERMS)
async def domain_list(request: web.Request) -> web.StreamResponse:
    q = request.query
    limit, offset = page_args(request)
    enabled = {"true": True, "false": False, "": None}.get(q.get("enabled", ""), None)
    result = await domaincore.search(
        await pool.conn(request), q=q.get("q") or None, enabled=enabled, source=q.get("source") or None,
        relay=q.get("relay") or None, recipients=q.get("recipients") or None, sort=q.get("sort", "name"),
        descending=q.get("order") == "desc", owner_id=domain_owner_filter(request[USER]), limit=limit, offset=offset)
    return web.json_response({"total": result.total, "limit": limit, "offset": offset,
                              "items": [domain_json(d) for d in result.domains]})


@needs(*DOMAIN_PERMS)
async def domain_create(request: web.Request) -> web.StreamResponse:
    data = await body(request)
    name = data.pop("name", None)
    user = request[USER]
    owner = data.pop("owner_id", None) if user.has(Permission.DOMAINS) else user.id
    spec = only(data, DOMAIN_FIELDS)
    check_quota_change(user, spec)
    domain = await domaincore.add(await pool.conn(request), actor(request), name, **spec, owner_id=owner,
                                  source="api")
    return web.json_response(domain_json(domain), status=201)


@needs(*DOMAIN_PERMS)
async def domain_get(request: web.Request) -> web.StreamResponse:
    return web.json_response(domain_json(await load_domain(request)))


@needs(*DOMAIN_PERMS)
async def domain_update(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    data = await body(request)
    allowed = DOMAIN_FIELDS + (("owner_id",) if request[USER].has(Permission.DOMAINS) else ())
    spec = only(data, allowed)
    check_quota_change(request[USER], spec)
    updated = await domaincore.update(await pool.conn(request), actor(request), domain.name, **spec)
    return web.json_response(domain_json(updated))


@needs(*DOMAIN_PERMS)
async def domain_delete(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    await domaincore.remove(await pool.conn(request), actor(request), domain.name)
    return web.json_response({"deleted": domain.name})


@needs(*DOMAIN_PERMS)
async def domain_bulk(request: web.Request) -> web.StreamResponse:
    data = only(await body(request), ("domains", "relay", "skip_existing"))
    lines = data.get("domains")
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines) or len(lines) > 100_000:
        raise InvalidInput("domains", "must be a list of at most 100000 strings ('domain' or 'domain relay')")
    user = request[USER]
    report = await domainimport.bulk_add(
        await pool.conn(request), actor(request), lines, relay=data.get("relay") or None,
        skip_existing=bool(data.get("skip_existing")), strict=False, source="api",
        owner_id=None if user.has(Permission.DOMAINS) else user.id)
    return web.json_response({
        "added": report.added,
        "skipped": [{"line": n, "text": t, "why": w} for n, t, w in report.skipped],
        "refused": [{"line": n, "text": t, "why": w} for n, t, w in report.refused]})


@needs(*DOMAIN_PERMS)
async def domain_told(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    recipient = request.query.get("recipient", "")[:254] or None
    return web.json_response([{"map": m, "key": k, "status": a.status, "value": a.value, "why": a.why}
                              for m, k, a in await told(request, domain.name, recipient)])


# -- recipients -------------------------------------------------------------------------------


@needs(*DOMAIN_PERMS)
async def recipient_list(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    items = await recipients.list_for(await pool.conn(request), domain.name)
    return web.json_response([dataclasses.asdict(r) for r in items])


@needs(*DOMAIN_PERMS)
async def recipient_add(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    data = only(await body(request), ("address",))
    conn = await pool.conn(request)
    address: Any = data.get("address")  # names.address() says what is wrong with it
    owner = await recipients.owning_domain(conn, names.address(address))
    if owner.id != domain.id:
        raise InvalidInput("address", f"belongs to the domain {owner.name}, not {domain.name}")
    added = await recipients.add(conn, actor(request), address)
    return web.json_response(dataclasses.asdict(added), status=201)


@needs(*DOMAIN_PERMS)
async def recipient_remove(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    conn = await pool.conn(request)
    address = names.address(request.match_info["address"])
    if address not in {r.address for r in await recipients.list_for(conn, domain.name)}:
        raise web.HTTPNotFound(text=f"{address} is not a listed recipient of {domain.name}")
    await recipients.remove(conn, actor(request), address)
    return web.json_response({"deleted": address})


# -- relays -----------------------------------------------------------------------------------


async def load_relay(request: web.Request) -> relaycore.Relay:
    relay = await relaycore.get(await pool.conn(request), request.match_info["relay"])
    check_relay(request[USER], relay)
    return relay


@needs(*RELAY_PERMS)
async def relay_list(request: web.Request) -> web.StreamResponse:
    items = await relaycore.list_all(await pool.conn(request), owner_id=relay_owner_filter(request[USER]))
    states = await health_of(request)
    return web.json_response([relay_json(r, states.get(r.id)) for r in items])


HEALTH_KEYS = ("state", "since", "last_probe_at", "last_ok", "last_latency_ms", "starttls", "last_detail")


def relay_json(relay: relaycore.Relay, state: dict[str, Any] | None) -> dict[str, Any]:
    """A relay with its health as mrod serve's probes last saw it (state 'unknown' until probed)."""
    probed = {key: (state or {}).get(key) for key in HEALTH_KEYS}
    probed["state"] = probed["state"] or "unknown"
    return relay.as_dict() | {"health": probed}


@needs(*RELAY_PERMS)
async def relay_create(request: web.Request) -> web.StreamResponse:
    data = await body(request)
    user = request[USER]
    owner = data.pop("owner_id", None) if user.has(Permission.RELAY) else user.id
    fields = only(data, RELAY_FIELDS)
    if "name" not in fields or "host" not in fields:
        raise InvalidInput("name" if "name" not in fields else "host", "is required")
    relay = await relaycore.add(await pool.conn(request), actor(request), **fields, owner_id=owner)
    return web.json_response(relay.as_dict(), status=201)


@needs(*RELAY_PERMS)
async def relay_get(request: web.Request) -> web.StreamResponse:
    relay = await load_relay(request)
    return web.json_response(relay_json(relay, (await health_of(request)).get(relay.id)))


@needs(*RELAY_PERMS)
async def relay_update(request: web.Request) -> web.StreamResponse:
    relay = await load_relay(request)
    allowed = RELAY_FIELDS + (("owner_id",) if request[USER].has(Permission.RELAY) else ())
    changes = only(await body(request), allowed)
    updated = await relaycore.update(await pool.conn(request), actor(request), relay.id, changes)
    return web.json_response(updated.as_dict())


@needs(*RELAY_PERMS)
async def relay_delete(request: web.Request) -> web.StreamResponse:
    relay = await load_relay(request)
    target = request.query.get("reassign") or None
    conn = await pool.conn(request)
    if target is not None:
        check_relay(request[USER], await relaycore.get(conn, target))
    await relaycore.remove(conn, actor(request), relay.id, reassign_to=target)
    return web.json_response({"deleted": relay.name, "reassigned_to": target})


@needs(*RELAY_PERMS)
async def relay_test(request: web.Request) -> web.StreamResponse:
    relay = await load_relay(request)
    await pool.release(request)
    result = await relaytest.probe(relay.host, relay.port, relay.protocol, 10.0, tls=relay.tls)
    return web.json_response(dataclasses.asdict(result) | {"ok": result.ok, "up": result.up})


# -- users ------------------------------------------------------------------------------------


@needs(Permission.USERMGR)
async def user_list(request: web.Request) -> web.StreamResponse:
    return web.json_response([u.as_dict() for u in await usercore.list_all(await pool.conn(request))])


@needs(Permission.USERMGR)
async def user_create(request: web.Request) -> web.StreamResponse:
    data = only(await body(request), ("name", "password", "is_admin", "enabled", "permissions"))
    is_admin = _bool(data, "is_admin", False)
    check_user_change(request[USER], None, makes_admin=is_admin)
    name: Any = data.get("name")  # usercore.add() says what is wrong with them
    password: Any = data.get("password")
    user = await usercore.add(await pool.conn(request), actor(request), name, password,
                              is_admin=is_admin, enabled=_bool(data, "enabled", True), perms=_perms(data) or (),
                              rounds=request.app[CONFIG].admin.bcrypt_rounds)
    return web.json_response(user.as_dict(), status=201)


async def load_user(request: web.Request) -> usercore.User:
    ref = request.match_info["user"]
    return await usercore.get(await pool.conn(request), int(ref) if ref.isdigit() else ref)


@needs(Permission.USERMGR)
async def user_get(request: web.Request) -> web.StreamResponse:
    return web.json_response((await load_user(request)).as_dict())


@needs(Permission.USERMGR)
async def user_update(request: web.Request) -> web.StreamResponse:
    target = await load_user(request)
    data = only(await body(request), ("is_admin", "enabled", "permissions", "password", "email"))
    is_admin = _bool(data, "is_admin", None)
    check_user_change(request[USER], target, makes_admin=bool(is_admin))
    conn = await pool.conn(request)
    if "password" in data:
        usercore.password(data["password"])
    email = None if "email" not in data else usercore.contact(data["email"] or "")
    updated = await usercore.update(conn, actor(request), target.id, is_admin=is_admin,
                                    enabled=_bool(data, "enabled", None), perms=_perms(data), email=email)
    if "password" in data:
        await usercore.set_password(conn, actor(request), target.id, data["password"],
                                    rounds=request.app[CONFIG].admin.bcrypt_rounds)
    return web.json_response(updated.as_dict())


@needs(Permission.USERMGR)
async def user_delete(request: web.Request) -> web.StreamResponse:
    target = await load_user(request)
    check_user_change(request[USER], target)
    if target.id == request[USER].id:
        raise InvalidInput("user", "you cannot delete yourself")
    await usercore.remove(await pool.conn(request), actor(request), target.id)
    return web.json_response({"deleted": target.name})


@overload
def _bool(data: dict[str, Any], key: str, default: bool) -> bool: ...
@overload
def _bool(data: dict[str, Any], key: str, default: None) -> bool | None: ...
def _bool(data: dict[str, Any], key: str, default: bool | None) -> bool | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(key, "must be true or false")
    return value


def _perms(data: dict[str, Any]) -> list[str] | None:
    value = data.get("permissions")
    if value is not None and (not isinstance(value, list) or not all(isinstance(p, str) for p in value)):
        raise InvalidInput("permissions", "must be a list of permission names")
    return value


# -- audit ------------------------------------------------------------------------------------


@needs(Permission.LOGS)
async def audit_list(request: web.Request) -> web.StreamResponse:
    limit, offset = page_args(request)
    filters = filters_of(request.query)
    conn = await pool.conn(request)
    items = await audit.entries(conn, **filters, limit=limit, offset=offset)
    return web.json_response({"total": await audit.count(conn, **filters), "limit": limit, "offset": offset,
                              "items": [dataclasses.asdict(e) for e in items]})
