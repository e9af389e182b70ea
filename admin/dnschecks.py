"""The DNS checks page: every domain's last DNS check with its findings and what to
fix, worst first, filtered by status and name, a page at a time. ``domains_own`` holders see
their own domains only. The checks themselves run in mrod serve (or `mrod check`); this page
reads the stored results (mrod.operations.checks). /api/v1/checks gives the same as JSON."""

from __future__ import annotations

from aiohttp import web

from mrod.infra.errors import InvalidInput
from mrod.operations import certchecks, checks

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, domain_owner_filter
from mrod.admin.api import page_args
from mrod.admin.auth import needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import int_arg, render

PER_PAGE = 25


@needs(*DOMAIN_PERMS)
async def listing(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", "")
    status = status if status in checks.STATUSES else ""
    q = request.query.get("q", "").strip()[:253]
    page = int_arg(request.query.get("page"), 1, 1, 1_000_000)
    conn = await pool.conn(request)
    owner = domain_owner_filter(request[USER])
    rows, total = await checks.page(conn, owner_id=owner, status=status or None, q=q or None,
                                    limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    if not rows and total and page > 1:          # past the end: the last page
        page = (total + PER_PAGE - 1) // PER_PAGE
        rows, total = await checks.page(conn, owner_id=owner, status=status or None, q=q or None,
                                        limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    query = {k: v for k, v in (("status", status), ("q", q)) if v}
    # Several nodes: each checks from its own network view; say which node saw what.
    several = bool({r["node"] for r in rows} - {request.app[CONFIG].node.name})
    return await render(request, "dnschecks.html", {
        "several_nodes": several,
        "hosts": await certchecks.host_results(conn),      # this host's own findings (its certificate)
        "rows": rows, "total": total, "page": page, "per_page": PER_PAGE, "query": query,
        "status": status, "q": q, "statuses": checks.STATUSES,
        "summary": await checks.summary(conn, owner_id=owner)})


@needs(*DOMAIN_PERMS)
async def api_listing(request: web.Request) -> web.StreamResponse:
    """The same results for scripts: GET /api/v1/checks?status=&q=&limit=&offset=."""
    limit, offset = page_args(request)
    status = request.query.get("status", "")
    if status and status not in checks.STATUSES:
        raise InvalidInput("status", f"{status!r} is not one of {', '.join(checks.STATUSES)}")
    rows, total = await checks.page(await pool.conn(request), owner_id=domain_owner_filter(request[USER]),
                                    status=status or None, q=request.query.get("q", "").strip()[:253] or None,
                                    limit=limit, offset=offset)
    return web.json_response({"total": total, "limit": limit, "offset": offset,
                              "items": [{k: v for k, v in r.items() if k != "id"} for r in rows]})
