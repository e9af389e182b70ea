"""One domain: its settings, "what Postfix is told" — the exact answers lookupd gives,
computed by mrod.answers.routing (never re-implemented here) —, its listed recipients, and why
mail may not flow: DNS check findings, mail queued for it, its primary's health (admin/why.py)."""

from __future__ import annotations

from aiohttp import web

from mrod.infra import names
from mrod.entities import recipients as rcptcore
from mrod.recipientsources import sources as recipientsources
from mrod.answers import routing
from mrod.infra.errors import Conflict, InvalidInput, NotFound
from mrod.answers import oneshot
from mrod.infra.enums import Permission

from mrod.admin import atrcpt, mtasts, outages, pool, why
from mrod.admin.access import DOMAIN_PERMS, load_domain as load
from mrod.admin.auth import actor, flash, needs
from mrod.admin.keys import CONFIG, USER
from mrod.admin.render import render, text

MAX_PROBE_ADDRESS = 254


async def told(request: web.Request, domain_name: str, recipient: str | None
               ) -> list[tuple[str, str, routing.Answer]]:
    """What lookupd answers, from the same code and a read-only connection like lookupd's own,
    in a worker thread: a writer holding the database (a BIND import) never stalls the loop."""
    cfg = request.app[CONFIG]
    options = routing.Options.from_config(cfg)
    return await oneshot.ask_off_loop(cfg.database, cfg.lookupd.lookup_deadline,
                                      lambda store: routing.told(store, domain_name, recipient or None, options))


def probe_recipient(value: str) -> tuple[str | None, str | None]:
    """(recipient to try, error) — a local part or an address, one printable line."""
    value = value.strip()
    if not value:
        return None, None
    if len(value) > MAX_PROBE_ADDRESS or any(ord(c) < 32 or ord(c) == 127 for c in value) or " " in value:
        return None, f"a recipient is one address (or local part) of at most {MAX_PROBE_ADDRESS} characters, no spaces"
    return value, None


@needs(*DOMAIN_PERMS)
async def show(request: web.Request) -> web.StreamResponse:
    return await _page(request)


async def _page(request: web.Request, *, status: int = 200, errors: dict[str, str] | None = None,
                new_address: str = "") -> web.StreamResponse:
    domain = await load(request)
    recipient, probe_error = probe_recipient(request.query.get("recipient", ""))
    conn = await pool.conn(request)
    found = await why.for_domain(conn, request[USER], domain, request.app[CONFIG].node.name,
                                 request.app[CONFIG].queue.interval)
    return await render(request, "domains/show.html", {
        "why": found,
        "at_rcpt": atrcpt.explain(domain, await atrcpt.relay_mode(conn, domain), found["primary"], request.app[CONFIG]),
        "domain": domain, "told": await told(request, domain.name, recipient),
        "recipient": request.query.get("recipient", "")[:MAX_PROBE_ADDRESS], "probe_error": probe_error,
        "recipients": await rcptcore.list_for(conn, domain.name), "errors": errors or {},
        # Its recipients synced from a primary's directory (mrod.recipientsources), if a source feeds it.
        "recipient_source": await recipientsources.feeding(conn, domain.id, domain.relay_id),
        "new_address": new_address,
        "relay_details": request[USER].has(Permission.RELAY) or request[USER].has(Permission.RELAY_OWN),
        "policy_defaults": request.app[CONFIG].policy,
        "outage": await outages.for_domain(conn, request[USER], domain, request.app[CONFIG].node.name),
        "mta_sts": await mtasts.for_domain(request, domain.name),
    }, status=status)


def _address_for(domain_name: str, typed: str) -> str:
    # A bare local part means "at this domain"; "@" alone (or "*") the catch-all.
    if typed in ("@", "*"):
        return f"@{domain_name}"
    return typed if "@" in typed else f"{typed}@{domain_name}"


@needs(*DOMAIN_PERMS)
async def recipient_add(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    form = await request.post()
    typed = text(form, "address", 300)
    try:
        if not typed:
            raise InvalidInput("address", "type an address, a local part, or @ for every address")
        address = _address_for(domain.name, typed)
        owner = await rcptcore.owning_domain(await pool.conn(request), _normal(address))
        if owner.id != domain.id:
            raise InvalidInput("address", f"{address} belongs to the domain {owner.name}, not {domain.name}")
        added = await rcptcore.add(await pool.conn(request), actor(request), address)
    except (InvalidInput, Conflict, NotFound) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc)
        return await _page(request, status=400, errors={"address": message}, new_address=typed)
    await flash(request, "success", f"Recipient {added.address} added.")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))


def _normal(address: str) -> str:
    return names.address(address)


@needs(*DOMAIN_PERMS)
async def recipient_remove(request: web.Request) -> web.StreamResponse:
    domain = await load(request)
    form = await request.post()
    address = text(form, "address", 300)
    listed = {r.address for r in await rcptcore.list_for(await pool.conn(request), domain.name)}
    if address not in listed:
        raise web.HTTPNotFound(text=f"{address} is not a listed recipient of {domain.name}")
    await rcptcore.remove(await pool.conn(request), actor(request), address)
    await flash(request, "success", f"Recipient {address} removed.")
    raise web.HTTPSeeOther(request.app.router["domain"].url_for(name=domain.name))
