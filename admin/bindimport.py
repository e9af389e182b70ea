"""BIND import (permission ``domains``): the [bind] settings in force, Preview (the plan,
nothing written), Import now, and the run history.

A run reads BIND's configuration and asks DNS for routes, which takes a while: it uses a
connection of its own, not one of the panel's pooled ones, so other pages stay served.
"""

from __future__ import annotations

from aiohttp import web

from mrod import bindimport
from mrod.infra import db
from mrod.bindimport import runs
from mrod.infra.errors import MrodError
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG
from mrod.admin.render import render

HISTORY = 20


async def _page(request: web.Request, result: bindimport.Result | None = None, error: str | None = None,
                status: int = 200) -> web.Response:
    history = await runs.recent(await pool.conn(request), limit=HISTORY)
    return await render(request, "bindimport.html", {
        "bind": request.app[CONFIG].bind, "history": history, "result": result, "error": error},
        status=status)


@needs(Permission.DOMAINS)
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@needs(Permission.DOMAINS)
async def preview(request: web.Request) -> web.StreamResponse:
    """The plan of a run now; shown at once (nothing changes, so no redirect)."""
    who = actor(request)
    await pool.release(request)
    try:
        async with db.opened(request.app[CONFIG].database) as conn:
            result = await bindimport.preview(conn, request.app[CONFIG], who)
    except MrodError as exc:
        return await _page(request, error=str(exc), status=422)
    return await _page(request, result)


@needs(Permission.DOMAINS)
async def run_now(request: web.Request) -> web.StreamResponse:
    who = actor(request)
    await pool.release(request)
    try:
        async with db.opened(request.app[CONFIG].database) as conn:
            result = await bindimport.run(conn, request.app[CONFIG], who)
    except MrodError as exc:
        await flash(request, "error", f"Import failed, nothing was changed: {exc}")
    else:
        counts = result.counts
        await flash(request, "success", (
            f"Import run #{result.run_id}: {counts['added']} added, {counts['updated']} updated, "
            f"{counts['disabled']} disabled, {counts['deleted']} deleted, {counts['problems']} problems."))
    raise web.HTTPSeeOther(request.app.router["bind_import"].url_for())
