"""The queued messages of some domains, by queue id, from ``postqueue -j`` (streamed).

Hold, release and the careful flush act on messages, not on domains: this lists the messages
with at least one recipient the domain relays (itself, or a subdomain when it includes them
and has no row of its own), oldest first. Only what
they need is kept per message (id, queue, arrival, sender, those recipients), never the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from mrod.infra import db
from mrod.infra.config import Config
from mrod.operations import queuestream
from mrod.operations.queueparse import QueuedMessage, recipient_domain


@dataclass(frozen=True)
class Message:
    queue_id: str
    queue_name: str
    arrival_time: int
    sender: str
    domain: str                    # the mrod domain it was picked for
    recipients: tuple[str, ...]    # its recipients in that domain


def owner(recipient: str, domains: Mapping[str, bool]) -> str | None:
    """The mrod domain that relays a recipient: its own domain, else the nearest parent that
    includes subdomains (``domains``: every mrod domain -> include_subdomains), or None."""
    name = recipient_domain(recipient)
    exact = True
    while name:
        if name in domains and (exact or domains[name]):
            return name
        name, exact = name.partition(".")[2], False
    return None


async def all_domains(cfg: Config) -> dict[str, bool]:
    """Every mrod domain -> whether it includes subdomains (what ``owner`` matches against)."""
    async with db.opened(cfg.database) as conn:
        async with conn.execute("SELECT name, include_subdomains FROM domain") as cur:
            return {row[0]: bool(row[1]) for row in await cur.fetchall()}


def pick(message: QueuedMessage, domains: Mapping[str, bool], wanted: set[str]) -> list[Message]:
    found: dict[str, list[str]] = {}
    for address, _reason in message.recipients:
        hit = owner(address, domains)
        if hit is not None and hit in wanted:
            found.setdefault(hit, []).append(address)
    return [Message(message.queue_id, message.queue_name, message.arrival_time or 0, message.sender, d, tuple(r))
            for d, r in found.items()]


async def of_domains(cfg: Config, wanted: set[str]) -> list[Message]:
    """Messages of these mrod domains (lowercase A-labels), oldest first: a recipient counts for
    the domain that relays it (a subdomain with its own row is not its parent's). Raises
    QueueUnavailable, and DatabaseNotReady when the domains cannot be read."""
    domains = await all_domains(cfg)
    out: list[Message] = []

    def consume(messages: list[QueuedMessage]) -> None:
        for message in messages:
            out.extend(pick(message, domains, wanted))

    await queuestream.stream(cfg, consume)      # parsed off the event loop, as the queue lists are
    return sorted(out, key=lambda m: (m.arrival_time, m.queue_id))
