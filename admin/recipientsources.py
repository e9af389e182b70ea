"""The Recipient sources page (administrators only: a source reads a password file on this
host): every source with its last sync, age, counts and error; add/edit; Sync now; Accept a
held result. /api/v1/recipient-sources gives the same for scripts (mrod.recipientsources)."""

from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from mrod.admin import pool
from mrod.admin.api import body
from mrod.admin.auth import actor, flash, needs, require
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import field_errors, render, text
from mrod.infra.enums import SOURCE_FORMATS, SOURCE_KINDS
from mrod.infra.errors import Conflict, InvalidInput, NotFound
from mrod.recipientsources import sources, spec as specs, status, sync

FIELDS = ("name", "kind", "url", "base", "filter", "attributes", "bind_dn", "starttls", "ca_file", "query",
          "format", "password_file")
ADMINS_ONLY = "recipient sources read files on this host: administrators only"


def _admin(request: web.Request) -> None:
    require(request, request[USER].is_admin, ADMINS_ONLY)


def _values(source: sources.Source | None = None, form: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if form is not None:
        return {k: text(form, k, specs.MAX_TEXT) for k in FIELDS}
    if source is None:
        return {k: "" for k in FIELDS} | {"kind": "ldap", "format": "json"}
    return {k: ("on" if getattr(source, k) else "") if k == "starttls" else (getattr(source, k) or "")
            for k in FIELDS}


async def _form(request: web.Request, values: dict[str, Any], errors: dict[str, str], *,
                source: sources.Source | None = None, status_code: int = 200) -> web.Response:
    conn = await pool.conn(request)
    used_by = [] if source is None else [d.name for d in await sources.fed_domains(conn, source.id)]
    return await render(request, "recipient_sources_form.html", {
        "values": values, "errors": errors, "source": source, "kinds": SOURCE_KINDS, "formats": SOURCE_FORMATS,
        "used_by": used_by}, status=status_code)


@needs()
async def listing(request: web.Request) -> web.StreamResponse:
    _admin(request)
    rows = await status.describe_all(await pool.conn(request))
    return await render(request, "recipient_sources.html", {"sources": rows})


@needs()
async def new_form(request: web.Request) -> web.StreamResponse:
    _admin(request)
    return await _form(request, _values(), {})


@needs()
async def create(request: web.Request) -> web.StreamResponse:
    _admin(request)
    form = await request.post()
    try:
        source = await sources.add(await pool.conn(request), actor(request), specs.parse(form))
    except InvalidInput as exc:
        return await _form(request, _values(form=form), field_errors(exc, FIELDS), status_code=400)
    except Conflict as exc:
        return await _form(request, _values(form=form), {"name": str(exc)}, status_code=400)
    await flash(request, "success", f"Recipient source {source.name} added. It feeds no domain until a domain or"
                f" relay uses it (mrod domain set DOMAIN --recipient-source {source.name}).")
    raise web.HTTPSeeOther(request.app.router["recipient_sources"].url_for())


async def _load(request: web.Request) -> sources.Source:
    _admin(request)
    return await sources.get(await pool.conn(request), request.match_info["name"])


@needs()
async def edit_form(request: web.Request) -> web.StreamResponse:
    source = await _load(request)
    return await _form(request, _values(source), {}, source=source)


@needs()
async def update(request: web.Request) -> web.StreamResponse:
    source = await _load(request)
    form = await request.post()
    try:
        saved = await sources.update(await pool.conn(request), actor(request), source.name, specs.parse(form))
    except InvalidInput as exc:
        return await _form(request, _values(form=form), field_errors(exc, FIELDS), source=source, status_code=400)
    except Conflict as exc:
        return await _form(request, _values(form=form), {"name": str(exc)}, source=source, status_code=400)
    await flash(request, "success", f"Recipient source {saved.name} saved.")
    raise web.HTTPSeeOther(request.app.router["recipient_sources"].url_for())


async def _run(request: web.Request, source: sources.Source, *, accept: bool) -> sync.Outcome:
    conn = await pool.conn(request)
    if accept:
        await sources.accept(conn, actor(request), source.name)
    return await sync.run(request.app[CONFIG], conn, source.name)


@needs()
async def sync_now(request: web.Request) -> web.StreamResponse:
    outcome = await _run(request, await _load(request), accept=False)
    await flash(request, "error" if outcome.error else "success", outcome.line())
    raise web.HTTPSeeOther(request.app.router["recipient_sources"].url_for())


@needs()
async def accept(request: web.Request) -> web.StreamResponse:
    outcome = await _run(request, await _load(request), accept=True)
    await flash(request, "error" if outcome.error else "success", outcome.line())
    raise web.HTTPSeeOther(request.app.router["recipient_sources"].url_for())


@needs()
async def delete(request: web.Request) -> web.StreamResponse:
    source = await _load(request)
    await sources.remove(await pool.conn(request), actor(request), source.name)
    await flash(request, "success", f"Recipient source {source.name} removed; its domains keep their lists.")
    raise web.HTTPSeeOther(request.app.router["recipient_sources"].url_for())


# -- API -------------------------------------------------------------------------------------


@needs()
async def api_list(request: web.Request) -> web.StreamResponse:
    _admin(request)
    return web.json_response({"items": await status.describe_all(await pool.conn(request))})


@needs()
async def api_create(request: web.Request) -> web.StreamResponse:
    _admin(request)
    data = await body(request)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of a recipient source ({', '.join(FIELDS)})")
    conn = await pool.conn(request)
    source = await sources.add(conn, actor(request), specs.parse(data))
    return web.json_response(await status.describe(conn, source), status=201)


@needs()
async def api_get(request: web.Request) -> web.StreamResponse:
    source = await _load(request)
    return web.json_response(await status.describe(await pool.conn(request), source))


@needs()
async def api_delete(request: web.Request) -> web.StreamResponse:
    source = await _load(request)
    await sources.remove(await pool.conn(request), actor(request), source.name)
    return web.Response(status=204)


def _outcome(outcome: sync.Outcome) -> web.Response:
    fields = {k: getattr(outcome, k) for k in ("source", "applied", "held", "skipped", "error", "addresses",
                                                "ignored", "invalid", "per_domain", "added", "removed")}
    return web.json_response(fields, status=200 if outcome.error is None else 502)


@needs()
async def api_sync(request: web.Request) -> web.StreamResponse:
    return _outcome(await _run(request, await _load(request), accept=False))


@needs()
async def api_accept(request: web.Request) -> web.StreamResponse:
    return _outcome(await _run(request, await _load(request), accept=True))




# -- which domains a source feeds --------------------------------------------------------------


async def _use(request: web.Request, *, domain: str, relay: str, source: str) -> str:
    """Set a domain's (or a relay's) source; returns what was done, for a flash or the API."""
    if bool(domain) == bool(relay):
        raise InvalidInput("domain", "give a domain or a relay (one of them)")
    conn = await pool.conn(request)
    if domain:
        await sources.use_for_domain(conn, actor(request), domain, source)
        return f"Domain {domain}: recipient source {source}."
    await sources.use_for_relay(conn, actor(request), relay, source)
    return f"Relay {relay}'s domains: recipient source {source}."


@needs()
async def use(request: web.Request) -> web.StreamResponse:
    """The edit page's "Used by" form: a domain or relay uses this source, or none/inherit."""
    source = await _load(request)
    form = await request.post()
    choice = text(form, "use", 20)
    target = source.name if choice == "this" else choice
    try:
        done = await _use(request, domain=text(form, "use_domain", 300), relay=text(form, "use_relay", 300),
                          source=target)
    except (InvalidInput, NotFound) as exc:
        await flash(request, "error", str(exc))
    else:
        await flash(request, "success", done)
    raise web.HTTPSeeOther(request.app.router["recipient_source"].url_for(name=source.name))


@needs()
async def api_domain_source(request: web.Request) -> web.StreamResponse:
    """PUT /domains/{name}/recipient-source {"source": NAME|none|inherit}."""
    _admin(request)
    data = await body(request)
    done = await _use(request, domain=request.match_info["name"], relay="", source=str(data.get("source") or ""))
    return web.json_response({"done": done})


@needs()
async def api_relay_source(request: web.Request) -> web.StreamResponse:
    """PUT /relays/{relay}/recipient-source {"source": NAME|none}."""
    _admin(request)
    data = await body(request)
    done = await _use(request, domain="", relay=request.match_info["relay"], source=str(data.get("source") or ""))
    return web.json_response({"done": done})
