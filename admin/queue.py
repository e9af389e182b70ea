"""The mail queue page and API (permission ``queue``), and /metrics.

* The page shows what waits in Postfix's queue per domain, as the last reading saw it (`mrod
  serve` reads the queue every [queue] interval; "Read the queue now" reads it at once), with a
  Flush button per domain (``postqueue -s`` for the domain and its subdomains with mail queued).
  Beside it: the primaries' health for relay holders, and how many domains' DNS checks found a
  problem for domain holders (the findings themselves: the DNS checks page, admin/dnschecks.py).
* A user who holds ``domains_own`` but not ``domains`` sees and flushes only their own domains.
* Several nodes over one database: the page shows every node's reading and every
  node's view of the primaries (a Node column when there is more than one). Flush acts on the
  node that holds the mail: this node's at once; another node's through a flush_request row
  that node's queue job takes at its next reading (mrod.operations.flushrequests).
* /metrics (and /api/v1/metrics with a bearer token, for Prometheus) needs ``queue`` and no
  owner restriction: the figures name every domain.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mrod.operations import checks, flushrequests, health, metrics, queueflush, queuereading, queuestats, queuetimes
from mrod.entities import domains
from mrod.infra import names
from mrod.infra.config.checks import node_name
from mrod.infra.errors import InvalidInput, MrodError
from mrod.entities.users import User
from mrod.infra.enums import Permission

from mrod.admin import pool, why
from mrod.admin.access import check_domain, domain_owner_filter, relay_owner_filter
from mrod.admin.auth import actor, flash, needs, require
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import render, text


def queue_owner(user: User) -> int | None:
    """None: every domain; else only this user's (domains_own without domains)."""
    return user.id if user.has(Permission.DOMAINS_OWN) and not user.has(Permission.DOMAINS) else None


@needs(Permission.QUEUE)
async def page(request: web.Request) -> web.StreamResponse:
    user: User = request[USER]
    conn = await pool.conn(request)
    owner = queue_owner(user)
    rows = await queuestats.stats(conn, owner_id=owner)
    for row in rows:
        row["age"] = queuetimes.age(row["oldest"])
    primaries = await health.status(conn, owner_id=relay_owner_filter(user)) \
        if user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN) else None
    problems = None
    if user.has(Permission.DOMAINS) or user.has(Permission.DOMAINS_OWN):
        problems = await checks.summary(conn, owner_id=domain_owner_filter(user))
    here = request.app[CONFIG].node.name
    readings = await queuereading.readings(conn)
    nodes = set(readings) | {r["node"] for r in rows} | {p["node"] for p in primaries or () if p["node"] is not None}
    return await render(request, "queue.html", {
        "rows": rows, "primaries": primaries, "problems": problems, "settings": request.app[CONFIG].queue,
        "node": here, "several_nodes": bool(nodes - {here}),
        "requests": await flushrequests.pending(conn),
        "unread": why.queue_unread(readings, here, request.app[CONFIG].queue.interval),
        "updated_at": max((r["updated_at"] for r in rows), default=None),
        "totals": {"messages": sum(r["messages"] for r in rows), "bytes": sum(r["bytes"] for r in rows)}})


@needs(Permission.QUEUE)
async def refresh(request: web.Request) -> web.StreamResponse:
    await pool.release(request)
    try:
        report = await queuestats.refresh(request.app[CONFIG])
    except MrodError as exc:
        await flash(request, "error", f"The queue could not be read: {exc}")
    else:
        await flash(request, "success", f"Queue read: {report.messages} message(s), {report.bytes} bytes.")
    raise web.HTTPSeeOther(request.app.router["queue"].url_for())


async def _flush(request: web.Request, name: str, node: str = "") -> list[queueflush.FlushResult]:
    conn = await pool.conn(request)
    domain = await domains.get(conn, name)
    owner = queue_owner(request[USER])
    if owner is not None:
        check_domain(request[USER], domain)
    cfg = request.app[CONFIG]
    if node:
        try:
            node = node_name(node)
        except ValueError as exc:
            raise InvalidInput("node", str(exc)) from None
    if node and node != cfg.node.name:
        # Another node holds this mail: only its own postqueue can flush it.
        await flushrequests.ask(conn, node, domain.id, actor(request).name)
        return [queueflush.FlushResult(domain.name, True, f"flush requested on node {node}: it acts at its next"
                                  f" queue reading (every {cfg.queue.interval:g}s)")]
    await pool.release(request)
    results = await queueflush.flush_rows(request.app[CONFIG], {domain.id: domain.name})
    return results or [queueflush.FlushResult(domain.name, True, "nothing queued")]


@needs(Permission.QUEUE)
async def flush(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    node = text(form, "node", 300)
    results = await _flush(request, text(form, "domain", 300), node)
    failed = [r for r in results if not r.ok]
    if failed:
        await flash(request, "error", "; ".join(f"{r.domain}: {r.detail}" for r in failed))
    elif node and node != request.app[CONFIG].node.name:
        await flash(request, "success", f"{names.to_unicode(results[0].domain)}: {results[0].detail}.")
    else:
        await flash(request, "success", "Flush requested for " + ", ".join(names.to_unicode(r.domain) for r in results)
                    + ": Postfix delivers the waiting mail now.")
    if text(form, "back") == "domain":      # the button on the domain's own page
        raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=names.domain(text(form, "domain", 300))))
    raise web.HTTPSeeOther(request.app.router["queue"].url_for())


# -- API ------------------------------------------------------------------------------------------


@needs(Permission.QUEUE)
async def api_queue(request: web.Request) -> web.StreamResponse:
    conn = await pool.conn(request)
    rows = await queuestats.stats(conn, owner_id=queue_owner(request[USER]))
    # Whether each node's figures are current: a failed or missing reading is not an empty queue.
    readings = [r.__dict__ | {"failed": r.failed} for r in (await queuereading.readings(conn)).values()]
    return web.json_response({"domains": [_public(r) for r in rows], "readings": readings})


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "owner_id"}


@needs(Permission.QUEUE)
async def api_flush(request: web.Request) -> web.StreamResponse:
    results = await _flush(request, request.match_info["name"], request.query.get("node", ""))
    # 200 either way: the request was handled; "ok" says whether Postfix took every flush.
    return web.json_response({"ok": all(r.ok for r in results), "flushed": [r.__dict__ for r in results]})


# -- metrics --------------------------------------------------------------------------------------


@needs(Permission.QUEUE)
async def metrics_page(request: web.Request) -> web.StreamResponse:
    require(request, queue_owner(request[USER]) is None, "the metrics name every domain; "
            "this needs the permission queue without an owner restriction")
    metrics.use_database(request.app[CONFIG].database, request.app[CONFIG].node.name)
    body = await metrics.render_async()
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})
