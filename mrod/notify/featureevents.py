"""Event sources of the features beside the built-in ones (mrod.notify.conditions): a recipient
source whose sync fails or is held, a relay certificate that expires soon, has expired or fails
verification, and a domain whose mail the careful flush's circuit breaker put on hold. Each
reads the state its feature stores and registers itself on import (mrod.notify.dispatcher
imports this module), as the package docstring describes.
"""

from __future__ import annotations

from mrod.infra.enums import Severity
from mrod.notify.events import Event, SourceContext, register
from mrod.operations import certchecks


async def recipient_sources_failing(ctx: SourceContext) -> list[Event]:
    """A recipient source whose last sync failed or was held for an operator (the last good list
    stays in force meanwhile): one event per source, for the operator."""
    async with ctx.conn.execute(
            "SELECT name, error, failing_since, pending FROM recipient_source"
            " WHERE error IS NOT NULL OR pending = 1 ORDER BY name") as cur:
        rows = list(await cur.fetchall())
    return [Event("source_failing", name, Severity.WARNING,
                  f"recipient source {name} {'holds a result for an operator to accept' if pending else 'fails'}"
                  f"{f': {error}' if error else ''}; its domains keep their last good recipient list"
                  f" (`mrod recipient-source accept {name}` applies a held result)",
                  resolved="syncs again", since=since)
            for name, error, since, pending in rows]


async def relay_certificates(ctx: SourceContext) -> list[Event]:
    """A relay's certificate, as this node's health probe saw it, that expires within 14 days, has
    expired, or fails verification under tls verify/secure (mrod.operations.certchecks' findings)."""
    found = []
    for relay in (await certchecks.relay_certificates(ctx.conn, ctx.node)).values():
        findings = certchecks.relay_findings(relay, ctx.now)
        if not findings:
            continue
        async with ctx.conn.execute("SELECT name FROM domain WHERE relay_id = ? ORDER BY name", (relay["id"],)) as cur:
            domains = tuple(r[0] for r in await cur.fetchall())
        worst = Severity.CRITICAL if any(f.level == "error" for f in findings) else Severity.WARNING
        found.append(Event("relay_certificate", relay["name"], worst,
                           "; ".join(f"{f.message} ({f.fix})" for f in findings), domains=domains,
                           resolved="has a good certificate again"))
    return found


async def breaker_holds(ctx: SourceContext) -> list[Event]:
    """A domain whose returning primary refused the careful flush's trial with 5xx: its mail is
    on hold on this node (mrod.operations.carefulflush) until an operator releases it."""
    async with ctx.conn.execute(
            "SELECT d.name, h.held_at, h.detail FROM domain_hold h JOIN domain d ON d.id = h.domain_id"
            " WHERE h.reason = 'breaker' AND h.node = ? ORDER BY d.name", (ctx.node,)) as cur:
        rows = list(await cur.fetchall())
    return [Event("breaker_hold", name, Severity.CRITICAL,
                  f"{name}: its primary came back but refused the first deliveries"
                  f"{f' ({detail})' if detail else ''}; its mail is held here, not bounced — check the primary,"
                  f" then `mrod domain release {name}`", domains=(name,), resolved="is released", since=held_at)
            for name, held_at, detail in rows]


register("recipient_sources", recipient_sources_failing)
register("breaker_holds", breaker_holds)
register("relay_certificates", relay_certificates)
