"""Many domains at once: the list's bulk edit (the domains ticked, or all matching
the filter), CSV export and CSV import with a preview. The work is mrod.entities.domainbulk and
mrod.entities.csvio — the same functions the CLI and the API call.

A ``domains_own`` user selects, exports and imports only their own domains.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.entities import csvio, domainbulk
from mrod.entities import domains as core
from mrod.entities import users as usercore
from mrod.infra.errors import Conflict, InvalidInput, NotFound
from mrod.infra.enums import Permission

from mrod.admin import pool, words
from mrod.admin.access import DOMAIN_PERMS, domain_owner_filter
from mrod.admin.auth import actor, flash, needs
from mrod.admin.domains import list_page, list_query
from mrod.admin.keys import USER
from mrod.admin.render import render, text

LIST_KEYS = ("q", "enabled", "source", "relay", "recipients", "sort", "dir", "per_page")
SETTINGS = ("set_route", "set_recipients", "set_when_primary_up", "set_enabled", "set_paused", "pause_reason",
            "set_subdomains")
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
    if text(form, "set_when_primary_up"):
        change["when_primary_up"] = text(form, "set_when_primary_up")
    for key, field in (("set_enabled", "enabled"), ("set_paused", "paused"), ("set_subdomains", "include_subdomains")):
        value = text(form, key)
        if value:
            if value not in _YES_NO:
                raise InvalidInput(key, "choose yes, no, or leave it unchanged")
            change[field] = _YES_NO[value]
    if change.get("paused"):
        change["pause_reason"] = text(form, "pause_reason", 1000) or None
    return change


def _bulk_problems(form: Mapping[str, Any], selected: list[str]) -> list[str]:
    """What is wrong with a bulk edit before it is tried, all of it: no domain ticked, nothing
    chosen to change, a pause reason the core refuses."""
    problems: list[str] = []
    if text(form, "scope") != "filter" and not selected:
        problems.append("no domain is selected")
    try:
        change = change_from_form(form)
    except InvalidInput as exc:
        return [*problems, exc.message]
    if not change:
        problems.append("nothing to change: choose at least one setting")
    if change.get("pause_reason") is not None:
        try:
            core.check_settings({"pause_reason": change["pause_reason"]})
        except InvalidInput as exc:
            problems.append(f"pause reason: {exc.message}")
    return problems


@needs(*DOMAIN_PERMS)
async def bulk_edit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    query = {k: text(form, k, 253) for k in LIST_KEYS if text(form, k, 253)}
    selected = [str(v) for v in form.getall("domain", [])][:domainbulk.MAX_NAMES]
    owner = domain_owner_filter(request[USER])
    if problems := _bulk_problems(form, selected):     # every wrong choice at once, not one a submit
        values = {k: text(form, k, 1000) for k in SETTINGS + ("scope",)}
        return await list_page(request, query, status=400, bulk={
            "values": values, "error": "Nothing was changed: " + "; ".join(problems), "selected": selected})
    try:
        change = change_from_form(form)
        if text(form, "scope") == "filter":
            filters = {k: v for k, v in list_query(query).items() if k in domainbulk.FILTERS and v is not None}
            result = await domainbulk.apply(await pool.conn(request), actor(request), change, filters=filters,
                                      owner_id=owner)
        else:
            result = await domainbulk.apply(await pool.conn(request), actor(request), change, domain_names=selected,
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
    filters = {k: v for k, v in list_query(query).items() if k in domainbulk.FILTERS and v is not None}
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
        "csv_text": csv_text, "report": report, "error": error, "columns": csvio.COLUMNS,
        "changes": change_words(report, await usercore.list_all(await pool.conn(request))) if report else {}},
                        status=status)


def change_words(report: csvio.Report, people: list[usercore.User]) -> dict[str, list[tuple[str, str, str]]]:
    """Each changed domain's changes as (field, before, after) in words: the relay by name
    (never its id), the owner by user name, an empty quota as the default."""
    owner_names = {u.id: u.name for u in people}
    out: dict[str, list[tuple[str, str, str]]] = {}
    for name, changes in report.changes.items():
        fields = {f for f, _, _ in changes}
        shown = []
        for field, before, after in changes:
            if field == "relay_id" and "relay_name" in fields:
                continue        # the same change, said by the relay's name
            if field == "owner_id":
                before, after = owner_names.get(before, before), owner_names.get(after, after)
            if field in ("quota_messages", "quota_bytes"):
                before, after = ("default" if v is None else v for v in (before, after))
            if field in ("relay_name", "host") and (before is None or after is None):
                before, after = ("none" if v is None else v for v in (before, after))
            shown.append((words.label(field), words.plain(before), words.plain(after)))
        out[name] = shown
    return out


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
