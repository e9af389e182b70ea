"""Relay pages: list, add, edit, delete (refused while domains use it, or reassign them), and
"test connection" (mrod.operations.relaytest.probe: the health probe's SMTP dialogue, with a
verdict for people). The list and a relay's page show its health as `mrod serve`'s probes
last saw it (mrod.operations.health)."""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.operations import health, relaytest
from mrod.entities import relays as core
from mrod.entities import users as usercore
from mrod.infra.errors import Conflict, InUse, InvalidInput, NotFound

from mrod.admin import outages, pool
from mrod.admin.access import RELAY_PERMS, check_relay, relay_owner_filter
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import all_field_errors, field_errors, render, text
from mrod.infra import enums
from mrod.infra.enums import Permission

FIELDS = ("name", "host", "port", "protocol", "tls", "when_primary_up", "owner")
PROBE_TIMEOUT = 10.0


async def health_of(request: web.Request) -> dict[int, dict[str, Any]]:
    """{relay id: its health row} for the relays this user may see, as this node ([node] name)
    probes them (the Queue page shows every node's view)."""
    rows = await health.status(await pool.conn(request), owner_id=relay_owner_filter(request[USER]),
                               node=request.app[CONFIG].node.name)
    return {row["id"]: row for row in rows}


@needs(*RELAY_PERMS)
async def listing(request: web.Request) -> web.StreamResponse:
    items = await core.list_all(await pool.conn(request), owner_id=relay_owner_filter(request[USER]))
    return await render(request, "relays/list.html", {"relays": items, "health": await health_of(request)})


def values_of(relay: core.Relay | None = None, form: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if form is not None:
        return {k: text(form, k, 300) for k in FIELDS}
    if relay is not None:
        return {"name": relay.name, "host": relay.host, "port": relay.port, "protocol": relay.protocol,
                "tls": relay.tls, "when_primary_up": relay.when_primary_up, "owner": relay.owner_id or ""}
    return {"name": "", "host": "", "port": 25, "protocol": "smtp", "tls": "may", "when_primary_up": "accept",
            "owner": ""}


async def _form(request: web.Request, values: dict[str, Any], errors: dict[str, str], *,
                relay: core.Relay | None = None, status: int = 200) -> web.Response:
    conn = await pool.conn(request)
    owners = await usercore.list_all(conn) if request[USER].has(Permission.RELAY) else []
    state = (await health_of(request)).get(relay.id) if relay is not None else None
    return await render(request, "relays/form.html", {
        "values": values, "errors": errors, "relay": relay, "owners": owners, "health": state,
        "outages": await outages.for_relay(conn, relay.id, request.app[CONFIG].node.name) if relay else None,
        "protocols": enums.PROTOCOLS, "tls_levels": enums.TLS_LEVELS}, status=status)


def _fields(request: web.Request, form: Mapping[str, Any]) -> dict[str, Any]:
    # Name and host are always checked; an empty port/protocol/tls means the default (or unchanged).
    fields: dict[str, Any] = {k: text(form, k, 300) for k in ("name", "host")}
    fields.update({k: text(form, k, 300) for k in ("port", "protocol", "tls", "when_primary_up")
                   if text(form, k, 300)})
    if request[USER].has(Permission.RELAY):
        owner = text(form, "owner")
        if owner and not owner.isdigit():
            raise InvalidInput("owner", "choose a user")
        fields["owner_id"] = int(owner) if owner else None
    return fields


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        return field_errors(exc, FIELDS)
    return {"name": str(exc)}


@needs(*RELAY_PERMS)
async def new_form(request: web.Request) -> web.StreamResponse:
    return await _form(request, values_of(), {})


@needs(*RELAY_PERMS)
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        fields = _fields(request, form)
        if errors := all_field_errors(core.validate, fields, FIELDS):
            return await _form(request, values_of(form=form), errors, status=400)
        if not request[USER].has(Permission.RELAY):
            fields["owner_id"] = request[USER].id        # relay_own: what they add is theirs
        relay = await core.add(await pool.conn(request), actor(request), **fields)
    except (InvalidInput, Conflict) as exc:
        return await _form(request, values_of(form=form), _errors(exc), status=400)
    await flash(request, "success", f"Relay {relay.name} added.")
    raise web.HTTPSeeOther(request.app.router["relays"].url_for())


async def load(request: web.Request) -> core.Relay:
    relay = await core.get(await pool.conn(request), int(request.match_info["id"]))
    check_relay(request[USER], relay)
    return relay


@needs(*RELAY_PERMS)
async def edit_form(request: web.Request) -> web.StreamResponse:
    relay = await load(request)
    return await _form(request, values_of(relay), {}, relay=relay)


@needs(*RELAY_PERMS)
async def update(request: web.Request) -> web.StreamResponse:
    relay = await load(request)
    form = await request.post()
    try:
        fields = _fields(request, form)
        if errors := all_field_errors(core.validate, fields, FIELDS):
            return await _form(request, values_of(form=form), errors, relay=relay, status=400)
        relay = await core.update(await pool.conn(request), actor(request), relay.id, fields)
    except (InvalidInput, Conflict) as exc:
        return await _form(request, values_of(form=form), _errors(exc), relay=relay, status=400)
    await flash(request, "success", f"Relay {relay.name} saved.")
    raise web.HTTPSeeOther(request.app.router["relays"].url_for())


async def _delete_page(request: web.Request, relay: core.Relay, error: str | None = None,
                       status: int = 200) -> web.Response:
    others = [r for r in await core.list_all(await pool.conn(request), owner_id=relay_owner_filter(request[USER]))
              if r.id != relay.id]
    return await render(request, "relays/delete.html", {"relay": relay, "others": others, "error": error},
                        status=status)


@needs(*RELAY_PERMS)
async def delete_form(request: web.Request) -> web.StreamResponse:
    return await _delete_page(request, await load(request))


@needs(*RELAY_PERMS)
async def delete(request: web.Request) -> web.StreamResponse:
    relay = await load(request)
    form = await request.post()
    if form.get("confirm") != "yes":
        return await _delete_page(request, relay)
    target = text(form, "reassign", 64) or None
    conn = await pool.conn(request)
    try:
        if target is not None:
            check_relay(request[USER], await core.get(conn, target))
        await core.remove(conn, actor(request), relay.id, reassign_to=target)
    except (InUse, InvalidInput, NotFound) as exc:
        return await _delete_page(request, relay, error=str(exc), status=409 if isinstance(exc, InUse) else 400)
    moved = f"; its {relay.domain_count} domain(s) now use {target}" if target and relay.domain_count else ""
    await flash(request, "success", f"Relay {relay.name} deleted{moved}.")
    raise web.HTTPSeeOther(request.app.router["relays"].url_for())


@needs(*RELAY_PERMS)
async def test(request: web.Request) -> web.StreamResponse:
    relay = await load(request)
    await pool.release(request)        # the probe may take seconds: lend the connection back
    result = await relaytest.probe(relay.host, relay.port, relay.protocol, PROBE_TIMEOUT, tls=relay.tls)
    return await render(request, "relays/test.html", {"relay": relay, "result": result})
