"""The dashboard: counts, relays and recent changes, and what needs attention — primaries down,
mail waiting, DNS problems, the last BIND import — each linking to the page that explains it and
shown only to those who may see that page; and, with several nodes (PostgreSQL), every node's
lookupd and how stale its routing snapshot is (permission ``queue``, like the Queue page)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from mrod.infra.dbapi import Connection
from mrod.entities import audit, domains, relays, users
from mrod.infra.config import Config
from mrod.operations import deliveries, nodereports, syncstatus
from mrod.infra.enums import Permission

from mrod.admin import pool, why
from mrod.admin.access import domain_owner_filter, relay_owner_filter
from mrod.admin.auth import needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import render

RECENT = 10


@needs()
async def show(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    conn = await pool.conn(request)
    context: dict[str, object] = {"counts": None, "relays": None, "recent": None, "user_count": None}
    if user.has(Permission.DOMAINS) or user.has(Permission.DOMAINS_OWN):
        context["counts"] = await domains.count(conn, owner_id=domain_owner_filter(user))
    if user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN):
        context["relays"] = await relays.list_all(conn, owner_id=relay_owner_filter(user))
    # Mail the primaries refused after this backup accepted it (issue 20.3): the lists drifting.
    context["refused"] = await deliveries.refusals(conn) if user.has(Permission.DOMAINS) else None
    if user.has(Permission.LOGS):
        context["recent"] = await audit.entries(conn, limit=RECENT)
    if user.has(Permission.USERMGR):
        context["user_count"] = await users.count(conn)
    cfg = request.app[CONFIG]
    context.update(await why.for_dashboard(conn, user, cfg.node.name, cfg.queue.interval))
    context["nodes"] = await _nodes(conn, request.app[CONFIG]) if user.has(Permission.QUEUE) else []
    context["here"] = request.app[CONFIG].node.name
    return await render(request, "dashboard.html", context)


async def _nodes(conn: Connection, cfg: Config) -> list[nodereports.NodeView]:
    """Every node's reported lookupd status; this node's read from its file just now."""
    live = await asyncio.to_thread(syncstatus.read_for, cfg)
    return nodereports.view(await nodereports.rows(conn), cfg.node.name, live)
