"""Many domains at once: the list's bulk edit (the domains ticked, or all matching
the filter), CSV export and CSV import with a preview. The work is mrod.entities.bulk and
mrod.entities.csvio — the same functions the CLI and the API call.

A ``domains_own`` user selects, exports and imports only their own domains.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities import bulk, csvio
from mrod.entities import domains as core
from mrod.entities import users as usercore
from mrod.infra.errors import Conflict, InvalidInput, NotFound
from mrod.infra.enums import Permission

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, domain_owner_filter
from mrod.admin.auth import actor, flash, needs
from mrod.admin.domains import list_page, list_query
from mrod.admin.keys import USER
from mrod.admin.render import render, text

LIST_KEYS = ("q", "enabled", "source", "relay", "recipients", "sort", "dir", "per_page")
SETTINGS = ("set_route", "set_recipients", "set_enabled", "set_paused", "pause_reason", "set_subdomains")
_YES_NO = {"yes": True, "no": False}


def change_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The settings chosen; an empty choice leaves that setting as it is."""
    change: dict[str, Any] = {}
    route = text(form, "set_route", 80)
    if route == "mx":
        change["mx"] = True
    elif route.startswith("relay:"):
        change["relay"] = route[len("relay:"):]
    elif route:
        raise InvalidInput("set_route", "choose a relay or routing by MX")
    if text(form, "set_recipients"):
        change["recipients"] = text(form, "set_recipients")
    for key, field in (("set_enabled", "enabled"), ("set_paused", "paused"), ("set_subdomains", "include_subdomains")):
        value = text(form, key)
        if value:
            if value not in _YES_NO:
                raise InvalidInput(key, "choose yes, no, or leave it unchanged")
            change[field] = _YES_NO[value]
    if change.get("paused"):
        change["pause_reason"] = text(form, "pause_reason", 1000) or None
    return change


@needs(*DOMAIN_PERMS)
async def bulk_edit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    query = {k: text(form, k, 253) for k in LIST_KEYS if text(form, k, 253)}
    selected = [str(v) for v in form.getall("domain", [])][:bulk.MAX_NAMES]
    owner = domain_owner_filter(request[USER])
    try:
        change = change_from_form(form)
        if text(form, "scope") == "filter":
            filters = {k: v for k, v in list_query(query).items() if k in bulk.FILTERS and v is not None}
            result = await bulk.apply(await pool.conn(request), actor(request), change, filters=filters,
                                      owner_id=owner)
        else:
            result = await bulk.apply(await pool.conn(request), actor(request), change, domain_names=selected,
                                      owner_id=owner)
    except (InvalidInput, NotFound, Conflict) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc)
        values = {k: text(form, k, 1000) for k in SETTINGS + ("scope",)}
        return await list_page(request, query, status=400, bulk={
            "values": values, "error": f"Nothing was changed: {message}", "selected": selected})
    await flash(request, "success", f"{len(result.changed)} domain(s) changed"
                + (f"; {len(result.unchanged)} had these settings already." if result.unchanged else "."))
    raise web.HTTPSeeOther(request.app.router["domains"].url_for().with_query(query))


async def export_text(request: web.Request, query: Mapping[str, str]) -> str:
    conn = await pool.conn(request)
    filters = {k: v for k, v in list_query(query).items() if k in bulk.FILTERS and v is not None}
    page = await core.search(conn, **filters, owner_id=domain_owner_filter(request[USER]), limit=None)
    owners = {u.id: u.name for u in await usercore.list_all(conn)}
    return csvio.export(page.domains, owners)


def csv_response(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="domains.csv"'})


@needs(*DOMAIN_PERMS)
async def export(request: web.Request) -> web.StreamResponse:
    return csv_response(await export_text(request, request.query))


# -- import -------------------------------------------------------------------------------------


async def _import_page(request: web.Request, *, csv_text: str = "", report: csvio.Report | None = None,
                       error: str | None = None, status: int = 200) -> web.Response:
    return await render(request, "domains/import.html", {
        "csv_text": csv_text, "report": report, "error": error, "columns": csvio.COLUMNS}, status=status)


@needs(*DOMAIN_PERMS)
async def import_form(request: web.Request) -> web.StreamResponse:
    return await _import_page(request)


async def _uploaded(form: Mapping[str, Any]) -> str:
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        try:
            return upload.file.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput("file", f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    value = form.get("csv", "")
    return value if isinstance(value, str) else ""


@needs(*DOMAIN_PERMS)
async def import_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    apply = text(form, "action") == "apply"
    user = request[USER]
    try:
        csv_text = await _uploaded(form)
        if not csv_text.strip():
            raise InvalidInput("csv", "paste CSV text or choose a file (the first row names the columns)")
        report = await csvio.run(await pool.conn(request), actor(request), csv_text, apply=apply,
                                 owner_id=None if user.has(Permission.DOMAINS) else user.id,
                                 may_set_quota=user.has(Permission.DOMAINS))
    except csvio.CsvRefused as exc:
        return await _import_page(request, csv_text=csv_text, report=exc.report, status=400,
                                  error=f"{len(exc.report.problems)} problem(s); nothing was imported.")
    except InvalidInput as exc:
        return await _import_page(request, csv_text=locals().get("csv_text", ""), status=400,
                                  error=f"Nothing was imported: {exc.message}")
    if not apply:
        return await _import_page(request, csv_text=csv_text, report=report)
    await flash(request, "success", f"CSV imported: {len(report.added)} domain(s) added, "
                f"{len(report.changed)} changed, {report.unchanged} unchanged.")
    raise web.HTTPSeeOther(request.app.router["domains"].url_for())
