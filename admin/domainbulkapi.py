"""The API's many-domain calls, the same core functions as the panel and the CLI:

* POST /domains/bulk-update  {"domains": [...]} or {"filter": {...}}, and {"set": {...}}
* GET  /domains/export       every field as CSV, with the list's filters
* POST /domains/import       a CSV body (text/csv); ?apply=true imports, otherwise a preview
"""

from __future__ import annotations

from aiohttp import web

from mrod.entities import csvio, domainbulk
from mrod.infra.errors import InvalidInput
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, check_quota_change, domain_owner_filter
from mrod.admin.api import body, only
from mrod.admin.auth import actor, needs
from mrod.admin.domainbulk import csv_response, export_text
from mrod.admin.keys import USER

MAX_CSV = 4 * 1024 * 1024


@needs(*DOMAIN_PERMS)
async def bulk_update(request: web.Request) -> web.StreamResponse:
    data = only(await body(request), ("domains", "filter", "set"))
    change = data.get("set")
    if not isinstance(change, dict):
        raise InvalidInput("set", "must be an object of the settings to change")
    check_quota_change(request[USER], change)
    selected, filters = data.get("domains"), data.get("filter")
    if selected is not None and (not isinstance(selected, list) or not all(isinstance(n, str) for n in selected)):
        raise InvalidInput("domains", "must be a list of domain names")
    if filters is not None and not isinstance(filters, dict):
        raise InvalidInput("filter", f"must be an object with any of {', '.join(domainbulk.FILTERS)}")
    result = await domainbulk.apply(await pool.conn(request), actor(request), change, domain_names=selected,
                              filters=filters, owner_id=domain_owner_filter(request[USER]))
    return web.json_response(result.as_dict())


@needs(*DOMAIN_PERMS)
async def export(request: web.Request) -> web.StreamResponse:
    query = dict(request.query)
    if "enabled" in query:      # the API's spelling (true/false) for the panel's (yes/no)
        query["enabled"] = {"true": "yes", "false": "no"}.get(query["enabled"], query["enabled"])
    return csv_response(await export_text(request, query))


@needs(*DOMAIN_PERMS)
async def import_csv(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    if len(raw) > MAX_CSV:
        raise InvalidInput("body", f"at most {MAX_CSV} bytes of CSV")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body", f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    apply = request.query.get("apply", "") in ("true", "1", "yes")
    user = request[USER]
    try:
        report = await csvio.run(await pool.conn(request), actor(request), text, apply=apply, source="api",
                                 owner_id=None if user.has(Permission.DOMAINS) else user.id,
                                 may_set_quota=user.has(Permission.DOMAINS))
    except csvio.CsvRefused as exc:
        return web.json_response({"error": str(exc), "status": 400, **exc.report.as_dict()}, status=400)
    return web.json_response({"applied": apply, **report.as_dict()})
