"""The audit log (permission ``logs``): every change by panel, API, CLI or importer — who,
when, from where, what before and after — filterable and paged."""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities import audit
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.auth import needs
from mrod.admin.render import int_arg, render

PER_PAGE = 50


def filters_of(query: Mapping[str, str]) -> dict[str, str | None]:
    """Filters from a query string; dates may be given as YYYY-MM-DD."""
    out: dict[str, str | None] = {}
    for key in ("entity", "actor", "action", "search", "key"):
        out[key] = query.get(key, "").strip()[:200] or None
    since, until = query.get("since", "").strip()[:20], query.get("until", "").strip()[:20]
    out["since"] = since or None
    # A bare date as the end means "through that day".
    out["until"] = (until + "T23:59:59Z" if len(until) == 10 else until) or None
    return out


def changes(entry: audit.AuditEntry) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for the fields that differ."""
    before, after = entry.before or {}, entry.after or {}
    return [(k, before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


@needs(Permission.LOGS)
async def listing(request: web.Request) -> web.StreamResponse:
    conn = await pool.conn(request)
    filters = filters_of(request.query)
    page = int_arg(request.query.get("page"), 1, 1, 100_000)
    total = await audit.count(conn, **filters)
    entries = await audit.entries(conn, **filters, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    keep = {k: v for k, v in request.query.items() if k in ("entity", "actor", "action", "search", "key",
                                                              "since", "until") and v}
    return await render(request, "logs.html", {
        "entries": [(e, changes(e)) for e in entries], "total": total, "page": page, "per_page": PER_PAGE,
        "query": keep, "filters": filters,
        "entities": ("domain", "relay", "recipient", "user", "api_token", "sign_in", "login_block", "queue")})
