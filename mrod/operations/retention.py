"""Retention per domain (issue 21.3): a domain's ``queue_lifetime`` (NULL: Postfix's own
``maximal_queue_lifetime``) enforced by a job under ``mrod serve``.

A message is expired when **every** recipient is in a domain with a lifetime of its own and
the message has waited longer than the **longest** of them: a message for a 1-day domain and a
5-day domain waits 5 days, and one that also goes to a domain without a lifetime (or to one that
is not mrod's) is left to Postfix's own lifetime — expiring it would bounce mail the other
domain's owner wants kept. Held messages are never expired (a hold — by hand or a domain hold —
means keep). Expiring is ``postsuper -e`` (Postfix returns the message to its sender at its next
delivery attempt), followed by ``postqueue -i`` so the bounce goes out now, not after the next
backoff; every run that expires something is audited with the ids (action ``expire``, entity
``queue``, actor ``retention``).

For notices before it happens (the notifications' event sources): ``expires_at`` says when a
domain's oldest queued message expires, and ``postfix_lifetime`` what "default" means here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Hashable

from mrod.entities.audit import Actor
from mrod.infra import db, durations
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.errors import MrodError
from mrod.infra.enums import QueueAction, QueueName
from mrod.operations import postqueue, postsuper, queueactions, queueroutes, queuestream
from mrod.operations.queueparse import QueuedMessage, recipient_domain
from mrod.operations.queueroutes import Classify

log = logging.getLogger("mrod.retention")
POSTFIX_DEFAULT = 5 * 86400          # maximal_queue_lifetime when main.cf does not set it


async def lifetimes(conn: Connection) -> dict[int, tuple[str, int]]:
    """Domains with a lifetime of their own: id -> (name, seconds)."""
    async with conn.execute("SELECT id, name, queue_lifetime FROM domain WHERE queue_lifetime IS NOT NULL") as cur:
        return {r[0]: (r[1], r[2]) for r in await cur.fetchall()}


@dataclass
class Expiry:
    """Which messages have outlived their domains' lifetimes (ids only: bounded by what expires)."""

    lifetimes: dict[int, tuple[str, int]]
    now: int = field(default_factory=lambda: int(time.time()))
    classify: Classify | None = None
    ids: list[str] = field(default_factory=list)
    domains: dict[str, int] = field(default_factory=dict)      # messages expired per domain
    _rows: dict[str, tuple[Hashable, str] | None] = field(default_factory=dict)

    def add_all(self, messages: list[QueuedMessage]) -> None:
        for m in messages:
            if m.queue_name == QueueName.HOLD or m.arrival_time is None or not m.recipients:
                continue
            rows = [self._row(recipient_domain(a)) for a, _ in m.recipients]
            if any(r is None or r[0] not in self.lifetimes for r in rows):
                continue
            longest = max(self.lifetimes[r[0]][1] for r in rows if r is not None and isinstance(r[0], int))
            if self.now - m.arrival_time >= longest:
                self.ids.append(m.queue_id)
                for name in {r[1] for r in rows if r is not None}:
                    self.domains[name] = self.domains.get(name, 0) + 1

    def _row(self, domain: str) -> tuple[Hashable, str] | None:
        if domain not in self._rows:
            self._rows[domain] = self.classify(domain) if self.classify is not None and domain else None
        return self._rows[domain]


async def run_once(cfg: Config) -> Expiry | None:
    """One pass: expire what has outlived its domains' lifetimes, start delivery, audit. None when
    no domain has a lifetime (the queue is not read then). Raises QueueUnavailable."""
    async with db.opened(cfg.database) as conn:
        found = await lifetimes(conn)
    if not found:
        return None
    expiry = Expiry(found)

    def setup() -> Any:
        expiry.classify, close = queueroutes.classifier(cfg)
        return close

    await queuestream.stream(cfg, expiry.add_all, setup=setup)
    if not expiry.ids:
        return expiry
    result = await postsuper.act(cfg, QueueAction.EXPIRE, expiry.ids)
    failures = await postsuper.kick(cfg, expiry.ids)
    done = queueactions.ActionResult(QueueAction.EXPIRE, expiry.ids, result.done, failures=failures)
    await queueactions.record(cfg, Actor.system("retention"), QueueAction.EXPIRE,
                              ",".join(sorted(expiry.domains))[:300], done)
    log.info("retention: expired %d message(s) (%s)", result.done,
             ", ".join(f"{d} {n}" for d, n in sorted(expiry.domains.items())))
    return expiry


async def postfix_lifetime(cfg: Config) -> int:
    """Postfix's maximal_queue_lifetime (``postconf -h``), in seconds; 5d when it cannot be asked."""
    argv = [postsuper.sibling(cfg, "postconf"),
            *(["-c", cfg.postfix.config_dir] if cfg.postfix.config_dir else []), "-h", "maximal_queue_lifetime"]
    try:
        proc = await postqueue.spawn(argv)
        out, _ = await proc.communicate()
        return durations.parse_duration(out.decode().strip() or "5d", "maximal_queue_lifetime") \
            if proc.returncode == 0 else POSTFIX_DEFAULT
    except MrodError:
        return POSTFIX_DEFAULT


async def expires_at(conn: Connection, domain_id: int, *, postfix_default: int = POSTFIX_DEFAULT,
                     node: str | None = None) -> int | None:
    """When the domain's oldest queued message expires (epoch seconds), from the last queue reading
    (queue_stat, this ``node``'s or the earliest of all nodes) and the domain's lifetime (else
    ``postfix_default``, e.g. from ``postfix_lifetime``). None: nothing queued for it. For a message
    that also goes to other domains the longest lifetime applies (see above): this is the
    earliest it can expire."""
    sql = ("SELECT MIN(q.oldest), d.queue_lifetime FROM queue_stat q JOIN domain d ON d.id = q.domain_id"
           " WHERE q.domain_id = ? AND q.oldest IS NOT NULL" + (" AND q.node = ?" if node is not None else "")
           + " GROUP BY d.queue_lifetime")
    async with conn.execute(sql, (domain_id, node) if node is not None else (domain_id,)) as cur:
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]) + (row[1] if row[1] is not None else postfix_default)
