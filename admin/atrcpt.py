"""What the policy service answers at RCPT for a domain right now, and why, in words: its mode
while the primary is up (issue 20.1) against the primary's state as this node sees it — the
same rules as lookupd's (mrod.answers.primaryup), read from the stored health, never probed here.
"""

from __future__ import annotations

import time
from typing import Any

from mrod.answers import primaryup
from mrod.entities.domains import Domain
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import HealthState, WhenPrimaryUp

from mrod.admin import words


async def relay_mode(conn: Connection, domain: Domain) -> str | None:
    if domain.relay_id is None:
        return None
    async with conn.execute("SELECT when_primary_up FROM relay WHERE id = ?", (domain.relay_id,)) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


def explain(domain: Domain, relay_mode: str | None, primary: dict[str, Any] | None, cfg: Config) -> dict[str, str]:
    """{"word": accept|defer, "text": why}. ``primary``: this node's health row (None: never probed)."""
    effective = primaryup.mode(domain.when_primary_up, relay_mode)
    whose = "its own setting" if domain.when_primary_up != WhenPrimaryUp.INHERIT else (
        f"relay {domain.relay_name}'s setting" if domain.relay_name else "the default")
    before = " (a pause or a full queue quota is checked first)"
    if effective != WhenPrimaryUp.DEFER:
        return {"word": "accept", "text": f"mail is accepted whether or not the primary is up ({whose}){before}"}
    exempt = ", ".join(cfg.policy.exempt_networks) or "none set"
    spared = f"postmaster@ and [policy] exempt_networks ({exempt}) are accepted in any case"
    if domain.relay_id is None:
        return {"word": "accept", "text": f"defer while the primary is up ({whose}), but no relay is probed for"
                                          " this domain (own host or MX): its state is unknown, so mail is accepted"}
    health = None if primary is None else (
        primary["state"], db.parse_stamp(primary["last_probe_at"]).timestamp() if primary["last_probe_at"] else None)
    state = primaryup.state(health, time.time(), cfg.health.interval)
    since = f" since {words.when(primary['since'])}" if primary and primary.get("since") else ""
    if state == HealthState.UP:
        return {"word": "defer", "text": f"the primary is up on this node{since} ({whose}: defer while it is up):"
                                         " RCPT gets 450 \"This is a backup MX …; deliver to its primary mail"
                                         f" server\"; {spared}{before}"}
    if state == HealthState.DOWN:
        return {"word": "accept", "text": f"the primary is down on this node{since}: mail is accepted until it"
                                          f" is up again ({whose}: defer while it is up){before}"}
    known = "never probed on this node" if primary is None or not primary.get("last_probe_at") else (
        f"last probed {words.when(primary['last_probe_at'])}, more than {primaryup.STALE_PROBES}"
        f" [health] intervals ago")
    return {"word": "accept", "text": f"the primary's state is not known ({known}): mail is accepted — mrod never"
                                      f" refuses mail because it does not know ({whose}: defer while it is up)"}
