"""Flush Postfix's queue: ``postqueue -s DOMAIN`` per domain (Postfix's flush service then
delivers the mail deferred for that domain at once, instead of at its next backoff), or
``postqueue -f`` for everything."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Iterable

from mrod.infra import names
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.operations import postqueue, queueread
from mrod.operations.postqueue import QueueUnavailable

log = logging.getLogger("mrod.queue")


@dataclass(frozen=True)
class FlushResult:
    domain: str
    ok: bool
    detail: str


async def flush_site(cfg: Config, domain: str) -> FlushResult:
    """``postqueue -s DOMAIN``. Never raises for Postfix's answer; bad input raises InvalidInput."""
    name = names.domain(domain, min_labels=1)
    try:
        code, stderr = await postqueue.run(postqueue.command(cfg, "-s", name), cfg.queue.timeout)
    except QueueUnavailable as exc:
        return FlushResult(name, False, str(exc))
    if code == 0:
        return FlushResult(name, True, "flush requested")
    return FlushResult(name, False, postqueue.failure(f"postqueue -s {name}", code, stderr))


async def flush_all(cfg: Config) -> FlushResult:
    """``postqueue -f``: everything queued, now."""
    code, stderr = await postqueue.run(postqueue.command(cfg, "-f"), cfg.queue.timeout)
    if code != 0:
        raise QueueUnavailable(postqueue.failure("postqueue -f", code, stderr))
    return FlushResult("*", True, "flush of the whole queue requested")


async def flush(cfg: Config, domains: Iterable[str], concurrency: int = 4) -> list[FlushResult]:
    """Flush several domains, a few at a time (each is a short subprocess)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> FlushResult:
        async with gate:
            try:
                result = await flush_site(cfg, name)
            except MrodError as exc:   # a name Postfix could queue but not a domain: [192.0.2.1]
                result = FlushResult(name, False, str(exc))
        (log.info if result.ok else log.warning)("flush %s: %s", name, result.detail)
        return result

    return list(await asyncio.gather(*(one(n) for n in sorted(set(domains)))))


async def flush_rows(cfg: Config, rows: dict[int, str]) -> list[FlushResult]:
    """Flush mrod domain rows (id -> name): every recipient domain with mail queued for them —
    subdomains included — as the queue shows it now; when the queue cannot be read, the rows'
    own names (Postfix's flush service knows what it deferred for each)."""
    if not rows:
        return []
    try:
        report = await queueread.read(cfg)
        targets = {d for domain_id in rows for d in report.domains_of(domain_id)}
    except QueueUnavailable as exc:
        log.warning("cannot read the queue (%s); flushing the domains by name", exc)
        targets = set(rows.values())
    return await flush(cfg, targets)
