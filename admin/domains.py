"""Domain pages: the list (search, filters, sorting, pages), add, edit, delete with
confirmation, and bulk add. The detail page (what Postfix is told, recipients) is in
domainview.py.
"""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.operations import checks
from mrod.entities import domainimport
from mrod.entities import domains as core
from mrod.entities import relays as relaycore
from mrod.entities import users as usercore
from mrod.infra import names
from mrod.infra.errors import Conflict, InvalidInput, NotFound

from mrod.admin import pool
from mrod.admin.access import DOMAIN_PERMS, QUOTA_FIELDS, domain_owner_filter, may_set_quota
from mrod.admin.access import load_domain as load
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import checked, field_errors, int_arg, render, text
from mrod.infra import durations, enums
from mrod.infra.enums import Permission

PER_PAGE = (25, 50, 100, 200)
FORM_FIELDS = ("name", "route", "relay", "host", "port", "protocol", "tls", "recipients", "owner",
               "pause_reason", "quota_messages", "quota_bytes", "verify_when_down", "when_primary_up", "queue_lifetime")
BULK_LIMIT = 100_000


def list_query(query: Mapping[str, str]) -> dict[str, Any]:
    """The list's filters from the query string; unknown values are ignored, not errors."""
    enabled = {"yes": True, "no": False}.get(query.get("enabled", ""))
    source = query.get("source", "")
    recipients = query.get("recipients", "")
    sort = query.get("sort", "name")
    return {
        "q": query.get("q", "").strip()[:253] or None,
        "enabled": enabled,
        "source": source if source in enums.SOURCES else None,
        "relay": query.get("relay", "").strip()[:64] or None,
        "recipients": recipients if recipients in enums.RECIPIENT_POLICIES else None,
        "sort": sort if sort in core.SORTABLE else "name",
        "descending": query.get("dir") == "desc",
    }


@needs(*DOMAIN_PERMS)
async def listing(request: web.Request) -> web.StreamResponse:
    return await list_page(request, request.query)


async def list_page(request: web.Request, query: Mapping[str, str], *, status: int = 200,
                    bulk: dict[str, Any] | None = None) -> web.Response:
    """The list for these filters; ``bulk``: a refused bulk change's values and error, shown again."""
    user = request[USER]
    conn = await pool.conn(request)
    filters = list_query(query)
    per_page = int_arg(query.get("per_page"), 50, 1, 200)
    per_page = per_page if per_page in PER_PAGE else 50
    page = int_arg(query.get("page"), 1, 1, 1_000_000)
    result = await core.search(conn, **filters, owner_id=domain_owner_filter(user), limit=per_page,
                               offset=(page - 1) * per_page)
    if not result.domains and page > 1 and result.total:       # past the end: show the last page
        page = (result.total + per_page - 1) // per_page
        result = await core.search(conn, **filters, owner_id=domain_owner_filter(user), limit=per_page,
                                   offset=(page - 1) * per_page)
    keep = {k: v for k, v in query.items() if k in ("q", "enabled", "source", "relay", "recipients",
                                                      "sort", "dir", "per_page") and v}
    return await render(request, "domains/list.html", {
        "result": result, "filters": filters, "query": keep, "page": page, "per_page": per_page,
        "per_page_choices": PER_PAGE, "relays": await relaycore.list_all(conn),
        "sources": enums.SOURCES, "policies": enums.RECIPIENT_POLICIES, "primary_up_modes": enums.WHEN_PRIMARY_UP,
        "dns": await checks.statuses(conn, [d.id for d in result.domains]),
        "bulk": bulk or {"values": {}, "error": None, "selected": []},
    }, status=status)


# -- add / edit -------------------------------------------------------------------------------


def spec_for(user: Any, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's settings this user may set (quotas only with the permission domains).
    Raises InvalidInput for the first wrong route field (form_errors finds them all)."""
    errors: dict[str, str] = {}
    spec = spec_from_form(form, errors)
    if errors:
        field, message = next(iter(errors.items()))
        raise InvalidInput(field, message)
    if not may_set_quota(user):
        for key in QUOTA_FIELDS:
            spec.pop(key, None)
    return spec


def spec_from_form(form: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The settings as mrod.entities.domains takes them; a missing route field goes into ``errors``."""
    route = text(form, "route") or "relay"
    spec: dict[str, Any] = {}
    if route == "relay":
        if not text(form, "relay"):
            errors["relay"] = "choose a relay"
        spec["relay"] = text(form, "relay", 64)
    elif route == "host":
        spec.update(host=text(form, "host", 300), port=text(form, "port", 10) or "25",
                    protocol=text(form, "protocol") or "smtp", tls=text(form, "tls") or "may")
        if not spec["host"]:
            errors["host"] = "give the primary's host name or address"
    elif route == "mx":
        spec.update(mx=True, tls=text(form, "tls") or "may")
    else:
        errors["route"] = "choose a relay, a host, or routing by MX"
    spec.update(enabled=checked(form, "enabled"), include_subdomains=checked(form, "include_subdomains"),
                recipients=text(form, "recipients") or "accept_all")
    spec.update(policy_from_form(form))
    return spec


async def form_errors(request: web.Request, form: Mapping[str, Any], *, creating: bool) -> dict[str, str]:
    """Every wrong field of the domain form at once (the core stops at the first), each
    checked by the same functions add/update use; nothing is written."""
    errors: dict[str, str] = {}
    if creating:
        name = text(form, "name", 300)
        try:
            names.domain(name)
        except InvalidInput as exc:
            errors["name"] = "give the domain's name, e.g. example.com" if not name else exc.message
    spec = spec_from_form(form, errors)
    if spec.get("relay"):
        try:
            await relaycore.get(await pool.conn(request), spec["relay"])
        except NotFound as exc:
            errors.setdefault("relay", str(exc))
    if "host" in spec:       # a host route: its port and protocol are checked even without a host
        host_checks = (("host", names.hostname), ("port", names.port),
                       ("protocol", lambda v: names.choice(v, enums.PROTOCOLS, "protocol")))
        for key, check in host_checks:
            try:
                check(spec[key])
            except InvalidInput as exc:
                errors.setdefault(key, exc.message)
    if "tls" in spec:
        try:
            names.choice(spec["tls"], enums.TLS_LEVELS, "tls")
        except InvalidInput as exc:
            errors.setdefault("tls", exc.message)
    if not may_set_quota(request[USER]):
        for key in QUOTA_FIELDS:
            spec.pop(key, None)
    for key in ("recipients", "verify_when_down", "when_primary_up", "pause_reason", *QUOTA_FIELDS, "queue_lifetime"):
        if key in spec:
            try:
                core.check_settings({key: spec[key]})
            except InvalidInput as exc:
                errors.setdefault(exc.field if exc.field in FORM_FIELDS else key, exc.message)
    try:
        _owner(request, form)
    except InvalidInput as exc:
        errors["owner"] = exc.message
    return errors


def policy_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """Pause, quotas and the verify fallback as mrod.entities.domains takes them (it checks them).

    A reason is sent only with a pause (unpausing forgets it, in mrod.entities.domains); an empty quota
    (or "default") means [policy]'s default, 0 no limit. Text is cut only far beyond what the
    core accepts, so an over-long value is refused there rather than silently shortened here.
    """
    spec: dict[str, Any] = {"paused": checked(form, "paused"),
                            "verify_when_down": text(form, "verify_when_down") or "accept",
                            "when_primary_up": text(form, "when_primary_up") or "inherit"}
    if spec["paused"]:
        spec["pause_reason"] = text(form, "pause_reason", 1000) or None
    for key in QUOTA_FIELDS:
        value = text(form, key, 100)
        spec[key] = None if value.lower() in ("", "default") else value
    if "queue_lifetime" in form:        # empty or "default": Postfix's maximal_queue_lifetime
        spec["queue_lifetime"] = text(form, "queue_lifetime", 100) or None
    return spec


def form_values(form: Mapping[str, Any] | None = None, domain: core.Domain | None = None) -> dict[str, Any]:
    if form is not None:
        return {k: text(form, k, 300) for k in FORM_FIELDS} | {
            "enabled": checked(form, "enabled"), "include_subdomains": checked(form, "include_subdomains"),
            "paused": checked(form, "paused")}
    if domain is not None:
        return {"name": domain.name, "route": domain.route_kind, "relay": domain.relay_name or "",
                "host": domain.host or "", "port": domain.port or 25, "protocol": domain.protocol or "smtp",
                "tls": domain.tls or "may", "recipients": domain.recipients, "owner": domain.owner_id or "",
                "enabled": domain.enabled, "include_subdomains": domain.include_subdomains,
                "paused": domain.paused, "pause_reason": domain.pause_reason or "",
                "quota_messages": "" if domain.quota_messages is None else domain.quota_messages,
                "quota_bytes": "" if domain.quota_bytes is None else domain.quota_bytes,
                "verify_when_down": domain.verify_when_down, "when_primary_up": domain.when_primary_up,
                "queue_lifetime": "" if domain.queue_lifetime is None
                else durations.duration_text(domain.queue_lifetime)}
    return {"name": "", "route": "relay", "relay": "", "host": "", "port": 25, "protocol": "smtp", "tls": "may",
            "recipients": "accept_all", "owner": "", "enabled": True, "include_subdomains": False,
            "paused": False, "pause_reason": "", "quota_messages": "", "quota_bytes": "", "verify_when_down": "accept",
            "when_primary_up": "inherit", "queue_lifetime": ""}


async def _form_page(request: web.Request, values: dict[str, Any], errors: dict[str, str], *,
                     domain: core.Domain | None = None, status: int = 200) -> web.Response:
    conn = await pool.conn(request)
    user = request[USER]
    owners = await usercore.list_all(conn) if user.has(Permission.DOMAINS) else []
    return await render(request, "domains/form.html", {
        "values": values, "errors": errors, "domain": domain, "relays": await relaycore.list_all(conn),
        "owners": owners, "policies": enums.RECIPIENT_POLICIES, "protocols": enums.PROTOCOLS,
        "tls_levels": enums.TLS_LEVELS, "policy_defaults": request.app[CONFIG].policy,
        "may_set_quota": may_set_quota(user),
    }, status=status)


def _owner(request: web.Request, form: Mapping[str, Any]) -> int | None:
    """Whose domain: a domains_own user's own; a domains holder picks (or nobody)."""
    user = request[USER]
    if not user.has(Permission.DOMAINS):
        return user.id
    chosen = text(form, "owner")
    if not chosen:
        return None
    if not chosen.isdigit():
        raise InvalidInput("owner", "choose a user")
    return int(chosen)


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidInput):
        mapped = InvalidInput("name" if exc.field == "domain" else exc.field, exc.message)
        return field_errors(mapped, FORM_FIELDS)
    if isinstance(exc, Conflict):
        return {"name": str(exc)}
    return {"relay": str(exc)}       # NotFound: the relay chosen is gone


@needs(*DOMAIN_PERMS)
async def new_form(request: web.Request) -> web.StreamResponse:
    values = form_values()
    if request[USER].has(Permission.DOMAINS):
        values["owner"] = ""
    return await _form_page(request, values, {})


@needs(*DOMAIN_PERMS)
async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if errors := await form_errors(request, form, creating=True):
        return await _form_page(request, form_values(form), errors, status=400)
    conn = await pool.conn(request)
    try:
        spec = spec_for(request[USER], form)
        spec["owner_id"] = _owner(request, form)
        domain = await core.add(conn, actor(request), text(form, "name", 300), **spec)
    except (InvalidInput, Conflict, NotFound) as exc:
        return await _form_page(request, form_values(form), _errors(exc), status=400)
    await flash(request, "success", f"Domain {domain.display_name} added.")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))


@needs(*DOMAIN_PERMS)
async def edit_form(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    return await _form_page(request, form_values(domain=domain), {}, domain=domain)


@needs(*DOMAIN_PERMS)
async def update(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    form = await request.post()
    if errors := await form_errors(request, form, creating=False):
        values = form_values(form) | {"name": domain.name}
        return await _form_page(request, values, errors, domain=domain, status=400)
    conn = await pool.conn(request)
    try:
        spec = spec_for(request[USER], form)
        if request[USER].has(Permission.DOMAINS):
            spec["owner_id"] = _owner(request, form)
        domain = await core.update(conn, actor(request), domain.name, **spec)
    except (InvalidInput, Conflict, NotFound) as exc:
        values = form_values(form) | {"name": domain.name}
        return await _form_page(request, values, _errors(exc), domain=domain, status=400)
    await flash(request, "success", f"Domain {domain.display_name} saved.")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))


@needs(*DOMAIN_PERMS)
async def delete_form(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    return await render(request, "domains/delete.html", {"domain": domain})


@needs(*DOMAIN_PERMS)
async def delete(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    form = await request.post()
    if form.get("confirm") != "yes":         # without the confirmation page's answer: ask
        return await render(request, "domains/delete.html", {"domain": domain})
    await core.remove(await pool.conn(request), actor(request), domain.name)
    await flash(request, "success", f"Domain {domain.display_name} deleted.")
    raise web.HTTPSeeOther(request.app.router["domains"].url_for())


# -- bulk add ---------------------------------------------------------------------------------


@needs(*DOMAIN_PERMS)
async def bulk_form(request: web.Request) -> web.StreamResponse:
    conn = await pool.conn(request)
    return await render(request, "domains/bulk.html", {
        "relays": await relaycore.list_all(conn), "policies": enums.RECIPIENT_POLICIES,
        "values": {"lines": "", "relay": "", "skip_existing": True, "recipients": "accept_all",
                   "include_subdomains": False}, "errors": {}, "report": None})


@needs(*DOMAIN_PERMS)
async def bulk(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    conn = await pool.conn(request)
    lines = str(form.get("lines", "")).splitlines()
    values: dict[str, Any] = {
        "lines": str(form.get("lines", "")), "relay": text(form, "relay", 64),
        "skip_existing": checked(form, "skip_existing"), "recipients": text(form, "recipients") or "accept_all",
        "include_subdomains": checked(form, "include_subdomains")}
    context: dict[str, Any] = {"relays": await relaycore.list_all(conn), "policies": enums.RECIPIENT_POLICIES,
                               "values": values, "errors": {}, "report": None, "lines": lines}
    # Every wrong field at once, before any line is looked at.
    errors: dict[str, str] = {}
    if len(lines) > BULK_LIMIT:
        errors["lines"] = f"at most {BULK_LIMIT} lines at a time"
    if values["relay"]:
        try:
            await relaycore.get(conn, values["relay"])
        except NotFound as exc:
            errors["relay"] = str(exc)
    try:
        names.choice(values["recipients"], enums.RECIPIENT_POLICIES, "recipients")
    except InvalidInput as exc:
        errors["recipients"] = exc.message
    if errors:
        context["errors"] = errors
        return await render(request, "domains/bulk.html", context, status=400)
    user = request[USER]
    try:
        report = await domainimport.bulk_add(conn, actor(request), lines, relay=values["relay"] or None,
                                             skip_existing=values["skip_existing"], strict=False,
                                             owner_id=None if user.has(Permission.DOMAINS) else user.id,
                                             recipients=values["recipients"],
                                             include_subdomains=values["include_subdomains"])
    except (InvalidInput, NotFound) as exc:
        field = "recipients" if isinstance(exc, InvalidInput) and exc.field == "recipients" else "relay"
        context["errors"] = {field: exc.message if isinstance(exc, InvalidInput) else str(exc)}
        return await render(request, "domains/bulk.html", context, status=400)
    context["report"] = report
    if report.added:
        await flash(request, "success", f"{len(report.added)} domain(s) added.")
    return await render(request, "domains/bulk.html", context, status=200)
