"""The "why" beside the settings: what the DNS checks found, the mail waiting, the
primary's health — on a domain's page and, summed up, on the dashboard. Everything is read from
the operations modules' stored readings (mrod serve writes them), never measured here, so a
page costs a few indexed queries.

Who sees what: a domain's own readings go to whoever may see the domain; a relay's probe detail
(its banner, which names the host) only to relay holders, as on the relay pages.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


from mrod.infra.dbapi import Connection
from mrod.bindimport import runs
from mrod.entities import audit
from mrod.entities.domains import Domain
from mrod.entities.users import User
from mrod.infra import db
from mrod.operations import checks, health, queuereading, queuestats
from mrod.operations.queuereading import Reading
from mrod.infra.enums import Permission

from mrod.admin import words
from mrod.admin.access import domain_owner_filter, relay_owner_filter

TRANSITIONS = 5
STALE_AFTER = 300.0      # seconds: a queue reading older than this (and 3 intervals) is not current


def _age(stamp: str) -> float:
    return (datetime.now(timezone.utc) - db.parse_stamp(stamp)).total_seconds()


def queue_unread(readings: dict[str, Reading], node: str, every: float) -> str | None:
    """Why there are no current queue figures, in words (None: this node's last reading worked
    and every other node's too). A reading that failed or never happened is not an empty queue."""
    reading = readings.get(node)
    said: list[str] = []
    if reading is None:
        said.append(f"the queue has not been read yet on this node (mrod serve reads it every {words.duration(every)})")
    elif reading.failed:
        last = (f"; the last reading that worked was at {words.when(reading.read_at)}" if reading.read_at
                else "; it has never been read")
        said.append(f"the queue could not be read at {words.when(reading.failed_at)}: {reading.error}{last}")
    elif reading.read_at and (age := _age(reading.read_at)) > max(3 * every, STALE_AFTER):
        # Readings stopped (mrod serve not running, its queue job stuck): the figures are old.
        said.append(f"the queue was last read at {words.when(reading.read_at)}, {words.duration(age)}"
                    f" ago (mrod serve reads it every {words.duration(every)})")
    said += [f"node {other}'s queue could not be read at {words.when(r.failed_at)}: {r.error}"
             for other, r in readings.items() if other != node and r.failed]
    return "; ".join(said) or None


async def for_domain(conn: Connection, user: User, domain: Domain, node: str,
                     queue_every: float = 60.0) -> dict[str, Any]:
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
        "queued": await queuestats.stat_for(conn, domain.id, node),
        "queue_unread": queue_unread({k: v for k, v in (await queuereading.readings(conn)).items() if k == node},
                                     node, queue_every),
        "primary": primary, "transitions": transitions,
        "may_flush": user.has(Permission.QUEUE),
        "probe_detail": user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN),
    }


async def for_dashboard(conn: Connection, user: User, node: str,
                        queue_every: float = 60.0) -> dict[str, Any]:
    """Each part only for those who hold the permission of the page that explains it; the
    primaries down as this node sees them (the tile links to the relays list, this node's view)."""
    domains_holder = user.has(Permission.DOMAINS) or user.has(Permission.DOMAINS_OWN)
    out: dict[str, Any] = {"down": None, "unprobed": [], "queue": None, "queue_unread": None, "dns": None,
                           "dns_unchecked": 0, "bind_run": None}
    if user.has(Permission.RELAY) or user.has(Permission.RELAY_OWN):
        seen = await health.status(conn, owner_id=relay_owner_filter(user), node=node)
        out["down"] = [r for r in seen if r["state"] == "down"]
        # Never probed: not known to be up, so not counted as "0 down" without saying so.
        out["unprobed"] = [r for r in seen if r["last_probe_at"] is None]
    if user.has(Permission.QUEUE):
        # The Queue page's own rule: domains_own without domains sees only its own domains.
        owner = user.id if user.has(Permission.DOMAINS_OWN) and not user.has(Permission.DOMAINS) else None
        out["queue"] = await queuestats.totals(conn, owner_id=owner)
        out["queue_unread"] = queue_unread(await queuereading.readings(conn), node, queue_every)
    if domains_holder:
        out["dns"] = await checks.summary(conn, owner_id=domain_owner_filter(user))
        out["dns_unchecked"] = await checks.unchecked(conn, owner_id=domain_owner_filter(user))
    if user.has(Permission.DOMAINS):
        recent = await runs.recent(conn, limit=1)
        out["bind_run"] = recent[0] if recent else None
    return out
