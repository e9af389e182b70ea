"""Outage history, domain holds and mail the primary refused — in the panel and the API.

* The relay page shows its outages and availability (this node's view); the domain page
  shows its relay's, whether its mail is held (by hand or by the circuit breaker) with Hold /
  Release buttons for users with the ``queue`` permission (a domains_own user: own domains
  only), and how much mail its primary refused after this backup accepted it.
* API: ``GET /api/v1/relays/{relay}/outages``, ``GET /api/v1/domains/{name}/outages``,
  ``POST /api/v1/domains/{name}/hold`` and ``/release`` (queue permission).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mrod.entities import domains as domaincore, holds, relays
from mrod.entities.domains import Domain
from mrod.entities.users import User
from mrod.infra.dbapi import Connection
from mrod.infra.enums import Permission
from mrod.operations import deliveries, holdqueue, outages

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, RELAY_PERMS, check_domain, check_relay, load_domain
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.queue import queue_owner


async def for_domain(conn: Connection, user: User, domain: Domain, node: str) -> dict[str, Any]:
    """The domain page's part: its hold, its relay's outages, the refusals counted for it."""
    history = await outages.summary(conn, domain.relay_id, node) if domain.relay_id is not None else None
    return {"hold": await holds.of_domain(conn, domain.id), "may_hold": user.has(Permission.QUEUE),
            "history": history, "refused": await deliveries.refusals(conn, domain_id=domain.id)}


async def for_relay(conn: Connection, relay_id: int, node: str) -> dict[str, Any]:
    return await outages.summary(conn, relay_id, node)


async def _set(request: web.Request, held: bool) -> tuple[Domain, holds.Hold | None, str]:
    # As the queue's Flush: the queue permission acts on every domain, unless it comes with
    # domains_own only (then on the user's own domains).
    domain = await domaincore.get(await pool.conn(request), request.match_info["name"])
    if queue_owner(request[USER]) is not None:
        check_domain(request[USER], domain)
    await pool.release(request)         # postqueue/postsuper run next: the connection is not held meanwhile
    found, note = await holdqueue.set_hold(request.app[CONFIG], actor(request), domain.name, held)
    return domain, found, note


@needs(Permission.QUEUE)
async def hold(request: web.Request) -> web.StreamResponse:
    domain, _, note = await _set(request, True)
    await flash(request, "success", f"{domain.display_name} is held: its mail is kept, not delivered ({note}).")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))


@needs(Permission.QUEUE)
async def release(request: web.Request) -> web.StreamResponse:
    domain, found, note = await _set(request, False)
    said = "released" if found else "was not held"
    await flash(request, "success", f"{domain.display_name} {said} ({note}).")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))


# -- API ------------------------------------------------------------------------------------------


@needs(*RELAY_PERMS)
async def api_relay(request: web.Request) -> web.StreamResponse:
    relay = await relays.get(await pool.conn(request), request.match_info["relay"])
    check_relay(request[USER], relay)
    summary = await for_relay(await pool.conn(request), relay.id, request.app[CONFIG].node.name)
    return web.json_response({"relay": relay.name, "node": request.app[CONFIG].node.name, **summary})


@needs(*DOMAIN_PERMS)
async def api_domain(request: web.Request) -> web.StreamResponse:
    domain = await load_domain(request)
    found = await for_domain(await pool.conn(request), request[USER], domain, request.app[CONFIG].node.name)
    hold_row = found["hold"]
    return web.json_response({"domain": domain.name, "relay": domain.relay_name, "node": request.app[CONFIG].node.name,
                              "hold": hold_row.as_dict() if hold_row else None, "refused": found["refused"],
                              **(found["history"] or {"availability_7d": None, "availability_30d": None,
                                                      "outages": []})})


@needs(Permission.QUEUE)
async def api_hold(request: web.Request) -> web.StreamResponse:
    domain, found, note = await _set(request, True)
    return web.json_response({"domain": domain.name, "held": True, "hold": found.as_dict() if found else None,
                              "queue": note})


@needs(Permission.QUEUE)
async def api_release(request: web.Request) -> web.StreamResponse:
    domain, found, note = await _set(request, False)
    return web.json_response({"domain": domain.name, "held": False, "was_held": found is not None, "queue": note})
