"""The "why" beside the settings: what the DNS checks found, the mail waiting, the
primary's health — on a domain's page and, summed up, on the dashboard. Everything is read from
the operations modules' stored readings (mrod serve writes them), never measured here, so a
page costs a few indexed queries.

Who sees what: a domain's own readings go to whoever may see the domain; a relay's probe detail
(its banner, which names the host) only to relay holders, as on the relay pages.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from mrod.bindimport import runs
from mrod.entities import audit
from mrod.entities.domains import Domain
from mrod.entities.users import User
from mrod.operations import checks, health, queue
from mrod.infra.enums import Permission

from mrod.admin.access import domain_owner_filter, relay_owner_filter

TRANSITIONS = 5


async def for_domain(conn: aiosqlite.Connection, user: User, domain: Domain, node: str) -> dict[str, Any]:
    """The domain's DNS check, queue and primary as this node (the panel's, [node] name) sees them."""
    primary = None
    transitions: list[audit.AuditEntry] = []
    if domain.relay_id is not None:
        primary = next((r for r in await health.status(conn, node=node) if r["id"] == domain.relay_id
                        and r["last_probe_at"] is not None), None)     # None: never probed
        transitions = await audit.entries(conn, entity="relay", key=domain.relay_name, action="state",
                                          limit=TRANSITIONS)
    return {
        "check": await checks.result_for(conn, domain.id, node),
        "queued": await queue.stat_for(conn, domain.id, node),
        "primary": primary, "transitions": transitions,
        "may_flush": user.has(Permission.QUEUE),
        "probe_detail": user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN),
    }


async def for_dashboard(conn: aiosqlite.Connection, user: User, node: str) -> dict[str, Any]:
    """Each part only for those who hold the permission of the page that explains it; the
    primaries down as this node sees them (the tile links to the relays list, this node's view)."""
    domains_holder = user.has(Permission.DOMAINS) or user.has(Permission.DOMAINS_OWN)
    out: dict[str, Any] = {"down": None, "queue": None, "dns": None, "bind_run": None}
    if user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN):
        out["down"] = [r for r in await health.status(conn, owner_id=relay_owner_filter(user), node=node)
                       if r["state"] == "down"]
    if user.has(Permission.QUEUE):
        # The Queue page's own rule: domains_own without domains sees only its own domains.
        owner = user.id if user.has(Permission.DOMAINS_OWN) and not user.has(Permission.DOMAINS) else None
        out["queue"] = await queue.totals(conn, owner_id=owner)
    if domains_holder:
        out["dns"] = await checks.summary(conn, owner_id=domain_owner_filter(user))
    if user.has(Permission.DOMAINS):
        recent = await runs.recent(conn, limit=1)
        out["bind_run"] = recent[0] if recent else None
    return out
