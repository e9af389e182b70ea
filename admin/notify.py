"""The Notifications page and API (permission ``logs``: the messages name domains and their
owners' addresses): what mrod sent, to whom, through which channel, delivered or failed (with
the last error and the attempts), the channels set up in [notify.*] with their state, and a
"Send a test" button per channel. The sending itself is mrod/notify."""

from __future__ import annotations

from aiohttp import web

from mrod.infra.enums import NOTICE_STATUSES, NOTIFY_CHANNELS, NoticeStatus, Permission
from mrod.infra.errors import InvalidInput
from mrod.notify import dispatcher, store

from mrod.admin import pool
from mrod.admin.api import page_args
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG
from mrod.admin.render import int_arg, render, text

PER_PAGE = 50


def _filter(value: str, allowed: tuple[str, ...], field: str) -> str | None:
    if value and value not in allowed:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value or None


@needs(Permission.LOGS)
async def page(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", "")
    status = status if status in NOTICE_STATUSES else ""
    number = int_arg(request.query.get("page"), 1, 1, 1_000_000)
    conn = await pool.conn(request)
    cfg = request.app[CONFIG]
    total, notices = await store.listing(conn, limit=PER_PAGE, offset=(number - 1) * PER_PAGE, status=status or None)
    return await render(request, "notify.html", {
        "notices": notices, "total": total, "page": number, "per_page": PER_PAGE,
        "query": {"status": status} if status else {}, "status": status, "statuses": NOTICE_STATUSES,
        "channels": await dispatcher.channel_states(conn, cfg), "settings": cfg.notify})


@needs(Permission.LOGS)
async def send_test(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    channel = text(form, "channel", 20)
    conn = await pool.conn(request)
    try:
        results = await dispatcher.send_test(conn, request.app[CONFIG], channel, actor(request).name)
    except InvalidInput as exc:
        await flash(request, "error", exc.message)
    else:
        for notice in results:
            if notice.status == NoticeStatus.DELIVERED:
                await flash(request, "success", f"Test sent through {channel} to {notice.recipient}: delivered.")
            else:
                await flash(request, "error", f"Test through {channel} to {notice.recipient} failed:"
                                              f" {notice.last_error}")
    raise web.HTTPSeeOther(request.app.router["notifications"].url_for())


# -- API ------------------------------------------------------------------------------------------


@needs(Permission.LOGS)
async def api_listing(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/notifications?status=&channel=&limit=&offset=: newest first, and the channels."""
    limit, offset = page_args(request)
    status = _filter(request.query.get("status", ""), NOTICE_STATUSES, "status")
    channel = _filter(request.query.get("channel", ""), NOTIFY_CHANNELS, "channel")
    conn = await pool.conn(request)
    total, notices = await store.listing(conn, limit=limit, offset=offset, status=status, channel=channel)
    return web.json_response({"total": total, "limit": limit, "offset": offset,
                              "channels": await dispatcher.channel_states(conn, request.app[CONFIG]),
                              "items": [n.as_dict() for n in notices]})


@needs(Permission.LOGS)
async def api_test(request: web.Request) -> web.StreamResponse:
    """POST /api/v1/notifications/test/{channel}: a test message now; ok says whether it arrived."""
    results = await dispatcher.send_test(await pool.conn(request), request.app[CONFIG],
                                         request.match_info["channel"], actor(request).name)
    return web.json_response({"ok": all(n.status == NoticeStatus.DELIVERED for n in results),
                              "sent": [n.as_dict() for n in results]})
