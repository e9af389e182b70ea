"""The login blocklist (permission ``blocklist``): active blocks by address and by user name,
recent failures, and lifting a block early."""

from __future__ import annotations

from aiohttp import web

from mrod.entities import throttle
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.auth import actor, flash, needs
from mrod.admin.render import render


@needs(Permission.BLOCKLIST)
async def show(request: web.Request) -> web.StreamResponse:
    conn = await pool.conn(request)
    return await render(request, "blocklist.html", {
        "active": await throttle.active(conn), "past": await throttle.recent(conn, 20),
        "failures": await throttle.failures(conn, 50)})


@needs(Permission.BLOCKLIST)
async def lift(request: web.Request) -> web.StreamResponse:
    block = await throttle.lift(await pool.conn(request), actor(request), int(request.match_info["id"]))
    await flash(request, "success", f"Block on {block.kind} {block.value} lifted.")
    raise web.HTTPSeeOther(request.app.router["blocklist"].url_for())
