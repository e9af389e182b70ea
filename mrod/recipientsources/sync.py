"""One sync of a recipient source: fetch, normalise, check, apply in one transaction.

Safety (a backup MX must not start refusing real recipients because a directory hiccuped): a
fetch that fails, a result with no address at all, or one that would remove more than
``[recipient_sources] max_removal`` of a domain's synced recipients changes nothing — the last
list stays, a warning is logged, and the source shows as failing until a good sync, or until
an operator accepts (``accept_next``: the next result is applied as it is).

A fed domain switches to recipient policy ``listed`` at its first good sync that lists at
least one of its addresses; until then it keeps its policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from mrod.entities import domains, recipients
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import RecipientPolicy
from mrod.infra.errors import MrodError
from mrod.recipientsources import addresses, fetch, sources

log = logging.getLogger("mrod.recipientsources")
ACTOR = Actor.system("recipient-source")


@dataclass
class Outcome:
    source: str
    applied: bool = False
    held: bool = False
    skipped: bool = False       # another node holds the lease
    error: str | None = None
    addresses: int = 0
    ignored: int = 0
    invalid: int = 0
    per_domain: dict[str, int] = field(default_factory=dict)
    added: int = 0
    removed: int = 0

    def line(self) -> str:
        if self.skipped:
            return f"{self.source}: another node is syncing it"
        if self.error:
            return f"{self.source}: {'HELD' if self.held else 'FAILED'}: {self.error}"
        return (f"{self.source}: {self.addresses} address(es) in {len(self.per_domain)} domain(s), "
                f"{self.added} added, {self.removed} removed, {self.ignored} ignored (domains not fed)"
                + (f", {self.invalid} not addresses" if self.invalid else ""))


def _refusal(grouped: addresses.Grouped, current: dict[str, set[str]], max_removal: float) -> str | None:
    """Why a result must not be applied without an operator, or None. A source that feeds no
    domain yet changes nothing, so nothing in its result is refused."""
    if grouped.total == 0 and current:
        return "the source returned no address of the domains it feeds; kept the last list"
    for name, had in sorted(current.items()):
        if not had:
            continue
        gone = len(had - grouped.by_domain.get(name, set()))
        if gone / len(had) > max_removal:
            return (f"{name}: the result would remove {gone} of {len(had)} recipients"
                    f" (more than {max_removal:.0%}); kept the last list — accept it with"
                    " mrod recipient-source accept")
    return None


async def run(cfg: Config, conn: Connection, name: str) -> Outcome:
    """Sync one source now (if no other node is syncing it)."""
    settings = cfg.recipient_sources
    source = await sources.get(conn, name)
    out = Outcome(source.name)
    lease = db.stamp(datetime.now(timezone.utc) + timedelta(seconds=settings.timeout * 3 + 60))
    if not await sources.claim(conn, source.id, cfg.node.name, lease):
        out.skipped = True
        return out
    try:
        await _sync(cfg, conn, source, out)
    finally:
        await sources.release(conn, source.id)
    return out


async def _sync(cfg: Config, conn: Connection, source: sources.Source, out: Outcome) -> None:
    try:
        values = await fetch.fetch(source, cfg.recipient_sources.timeout)
    except MrodError as exc:
        out.error = str(exc)
        log.warning("recipient source %s: sync failed, the last list stays: %s", source.name, exc)
        await sources.record_failure(conn, source.id, out.error, held=False)
        return
    fed = await sources.fed_domains(conn, source.id)
    async with conn.execute("SELECT name, include_subdomains FROM domain") as cur:
        known = {r[0]: bool(r[1]) for r in await cur.fetchall()}
    grouped = addresses.group(values, {d.name: d.include_subdomains for d in fed}, known)
    out.addresses, out.ignored, out.invalid = grouped.total, grouped.ignored, grouped.invalid
    out.per_domain = {k: len(v) for k, v in sorted(grouped.by_domain.items())}
    current = {d.name: await recipients.synced(conn, source.id, d.id) for d in fed}
    refusal = _refusal(grouped, current, cfg.recipient_sources.max_removal)
    if refusal is not None and not source.accept_next:
        out.error, out.held = refusal, True
        log.warning("recipient source %s: %s", source.name, refusal)
        await sources.record_failure(conn, source.id, refusal, held=True)
        return
    async with db.transaction(conn):
        for domain in fed:
            wanted = grouped.by_domain.get(domain.name, set())
            added, removed = await recipients.replace_synced(conn, ACTOR, source.id, domain.id, domain.name, wanted)
            out.added, out.removed = out.added + added, out.removed + removed
            if wanted and domain.recipients != RecipientPolicy.LISTED:
                await domains.update(conn, ACTOR, domain.name, recipients=RecipientPolicy.LISTED.value)
        await sources.record_applied(conn, source.id, grouped.total, grouped.ignored, out.per_domain)
    out.applied = True
    log.info("recipient source %s: %s", source.name, out.line())


async def run_all(cfg: Config, conn: Connection) -> list[Outcome]:
    return [await run(cfg, conn, s.name) for s in await sources.list_all(conn)]
