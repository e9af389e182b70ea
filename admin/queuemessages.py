"""The queue message by message in the panel and the API (issue 21.5): a per-domain page
(/domains/{name}/queue) and a whole-queue page (/queue/messages, permission ``queue``), each a
filtered, paged list with checkboxes and hold / release / requeue / delete buttons; delete
shows a confirmation step first. API: GET /api/v1/queue/messages, POST
/api/v1/queue/messages/{action} (delete needs ``"confirm": true``).

Who sees what (mrod.operations.queuelist): a user with ``queue`` and no owner restriction, or
with ``domains``, sees every message; a ``domains_own`` user sees — and acts on — only messages
whose recipients are all in their own domains (a message that also goes elsewhere is hidden).
Reading the queue waits on ``postqueue``: the request's database connection is handed back
first (pool.release), as the queue page's "read now" does.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities.users import User
from mrod.infra import names
from mrod.infra.enums import QUEUE_NAMES, Permission, QueueAction
from mrod.infra.errors import InvalidInput, MrodError
from mrod.operations import queueactions
from mrod.operations.postqueue import QueueUnavailable
from mrod.operations.queuelist import Page, QueueFilter

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, load_domain
from mrod.admin.auth import actor, flash, needs, require
from mrod.admin.keys import CONFIG, USER
from mrod.admin.queue import queue_owner
from mrod.admin.render import render

FILTERS = ("queue", "sender", "recipient", "older_than", "limit")
PANEL_ACTIONS = tuple(a for a in QueueAction if a != QueueAction.EXPIRE)


def owner_of(user: User) -> int | None:
    """None: every message; else the user whose own domains bound what they see."""
    if user.has(Permission.DOMAINS) or (user.has(Permission.QUEUE) and queue_owner(user) is None):
        return None
    return user.id


async def _filter(request: web.Request, values: Mapping[str, str], domain: str | None) -> QueueFilter:
    return await queueactions.build_filter(
        await pool.conn(request), domain=domain, queue=values.get("queue") or None,
        sender=values.get("sender") or None, recipient=values.get("recipient") or None,
        older_than=values.get("older_than") or None, owner_id=owner_of(request[USER]))


async def _domain_name(request: web.Request) -> str:
    """The page's domain, if this user may see it (403/404 otherwise)."""
    if owner_of(request[USER]) is None:
        return names.domain(request.match_info["name"], min_labels=1)
    return (await load_domain(request)).name


def _query(values: Mapping[str, str]) -> dict[str, str]:
    return {k: values[k] for k in FILTERS if values.get(k)}


async def _listing(request: web.Request, domain: str | None) -> web.StreamResponse:
    query = request.query
    page: Page | None = None
    error = None
    try:
        flt = await _filter(request, query, domain)
        await pool.release(request)
        page = await queueactions.list_page(request.app[CONFIG], flt, limit=query.get("limit") or None,
                                            after=query.get("after") or None)
    except InvalidInput as exc:
        error = str(exc)
    except MrodError as exc:      # Postfix down, postqueue missing: said on the page
        error = f"The queue could not be read: {exc}"
    return await render(request, "queue_messages.html", {
        "domain": domain, "page": page, "rows": [m.as_dict() for m in page.messages] if page else [],
        "error": error, "values": {k: query.get(k, "") for k in FILTERS}, "queues": QUEUE_NAMES,
        "actions": PANEL_ACTIONS, "query": _query(query), "after": query.get("after", ""),
        "action_url": request.app.router["domain_queue" if domain else "queue_messages"].url_for(
            **({"name": domain} if domain else {}))})


@needs(Permission.QUEUE)
async def queue_page(request: web.Request) -> web.StreamResponse:
    return await _listing(request, None)


@needs(*DOMAIN_PERMS, Permission.QUEUE)
async def domain_page(request: web.Request) -> web.StreamResponse:
    return await _listing(request, await _domain_name(request))


async def _act(request: web.Request, domain: str | None) -> web.StreamResponse:
    form = await request.post()
    action = str(form.get("action", ""))
    ids = [str(v) for v in form.getall("id", [])]
    all_matching = form.get("all_matching") == "1"
    values = {k: str(form.get(k, "")) for k in FILTERS}
    back = request.app.router["domain_queue" if domain else "queue_messages"].url_for(
        **({"name": domain} if domain else {})).with_query(_query(values))
    if action not in PANEL_ACTIONS:
        raise InvalidInput("action", "must be hold, release, requeue or delete")
    if not ids and not all_matching:
        await flash(request, "error", "Choose at least one message.")
        raise web.HTTPSeeOther(back)
    if action == QueueAction.DELETE and form.get("confirm") != "yes":
        return await render(request, "queue_confirm.html", {
            "domain": domain, "ids": ids, "all_matching": all_matching, "values": values,
            "action_url": request.path, "back": back})
    flt = await _filter(request, values, domain)
    await pool.release(request)
    try:
        result = await queueactions.act(request.app[CONFIG], actor(request), action, ids=ids, flt=flt,
                                        all_matching=all_matching)
    except MrodError as exc:
        await flash(request, "error", f"{action}: {exc}")
    else:
        text = f"{action}: Postfix acted on {result.done} of {len(result.ids)} message(s)."
        if result.skipped:
            text += f" {result.skipped} left alone: they also go to other domains."
        await flash(request, "error" if result.failures else "success",
                    text + ("" if not result.failures else " Delivery not started: " + result.failures[0]))
    raise web.HTTPSeeOther(back)


@needs(Permission.QUEUE)
async def queue_action(request: web.Request) -> web.StreamResponse:
    return await _act(request, None)


@needs(*DOMAIN_PERMS, Permission.QUEUE)
async def domain_action(request: web.Request) -> web.StreamResponse:
    return await _act(request, await _domain_name(request))


# -- API ------------------------------------------------------------------------------------------


def _api_domain(request: web.Request, domain: str | None) -> None:
    """The whole queue needs ``queue``; without it, a domain's messages (?domain=), or — for a
    domains_own user — every message wholly within their own domains."""
    user: User = request[USER]
    require(request, domain is not None or user.has(Permission.QUEUE) or owner_of(user) is not None,
            "the whole queue needs the permission queue; give ?domain=")


@needs(*DOMAIN_PERMS, Permission.QUEUE)
async def api_list(request: web.Request) -> web.StreamResponse:
    domain = request.query.get("domain") or None
    _api_domain(request, domain)
    flt = await _filter(request, request.query, domain)
    await pool.release(request)
    try:
        page = await queueactions.list_page(request.app[CONFIG], flt, limit=request.query.get("limit") or None,
                                            after=request.query.get("after") or None)
    except QueueUnavailable as exc:
        return _unavailable(exc)
    return web.json_response(page.as_dict())


def _unavailable(exc: QueueUnavailable) -> web.Response:
    """Postfix not running, postqueue/postsuper missing or too slow: the service is unavailable."""
    return web.json_response({"error": str(exc), "status": 503}, status=503)


@needs(*DOMAIN_PERMS, Permission.QUEUE)
async def api_action(request: web.Request) -> web.StreamResponse:
    action = request.match_info["action"]
    try:
        body: Any = await request.json()
    except ValueError:
        raise InvalidInput("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    if action not in PANEL_ACTIONS:
        raise InvalidInput("action", "must be hold, release, requeue or delete")
    domain = body.get("domain")
    if domain is not None and not isinstance(domain, str):
        raise InvalidInput("domain", "must be a domain name")
    ids = body.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput("ids", "must be a list of queue ids")
    if action == QueueAction.DELETE and body.get("confirm") is not True:
        raise InvalidInput("confirm", 'deleting messages needs "confirm": true (deleted mail is gone, no bounce)')
    values = {k: str(body[k]) for k in FILTERS if isinstance(body.get(k), (str, int))}
    flt = await _filter(request, values, domain or None)
    await pool.release(request)
    try:
        result = await queueactions.act(request.app[CONFIG], actor(request), action, ids=ids, flt=flt,
                                        all_matching=body.get("all_matching") is True)
    except QueueUnavailable as exc:
        return _unavailable(exc)
    return web.json_response(result.as_dict())
