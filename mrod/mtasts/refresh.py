"""The refresh job of `mrod serve` (and `mrod mta-sts refresh`): for each enabled domain, look
up its ``_mta-sts`` TXT id; fetch the policy again only when the id changed or the cached one
nears its max_age; decide DANE; store the answer lookupd gives (cache.py). Never on the lookup
path: lookupd reads the stored answer from its snapshot.

RFC 8461 §5: a policy that cannot be fetched (or whose TXT record is gone) keeps the cached one
until its max_age runs out; the failure is stored beside it and shown.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import dns.asyncresolver

from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.resolver import DnsLookupFailed
from mrod.mtasts import cache, dane, fetch
from mrod.mtasts.cache import Cached
from mrod.mtasts.policy import answer

log = logging.getLogger("mrod.mtasts")
REFETCH_AT_LEAST = 86400     # a policy is fetched again at least daily (or at half its max_age)
CONCURRENCY = 16


def _due(entry: Cached, now: datetime) -> bool:
    if entry.fetched_at is None or entry.max_age is None:
        return True
    fetched = db.parse_stamp(entry.fetched_at)
    return now >= fetched + timedelta(seconds=min(REFETCH_AT_LEAST, entry.max_age // 2))


class Refresher:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.resolver: dns.asyncresolver.Resolver = fetch.resolver_for(cfg)
        self.dane_resolver = dane.validating(fetch.resolver_for(cfg))
        self.context: ssl.SSLContext = fetch.ssl_context(cfg)
        self.ours = set(cfg.checks.mx_names)

    async def one(self, conn: Connection, domain: str, *, force: bool = False) -> Cached:
        """Refresh one domain's row (``force``: fetch the policy even if its id is unchanged)."""
        before = await cache.cached(conn, domain)
        entry = await self.decide(domain, before, force=force)
        await self.store(conn, before, entry)
        return entry

    async def decide(self, domain: str, before: Cached | None, *, force: bool = False) -> Cached:
        """The domain's new row (DNS and HTTPS only; no database)."""
        now = datetime.now(timezone.utc)
        stamp = db.stamp(now)
        entry = before or Cached(domain, None, None, (), None, None, None, False, None, None, None)
        if entry.expires_at is not None and db.parse_stamp(entry.expires_at) <= now:
            log.info("MTA-STS policy of %s expired (max_age %s s)", domain, entry.max_age)
            entry = replace(entry, policy_id=None, mode=None, mx=(), max_age=None, fetched_at=None, expires_at=None)
        error = None
        try:
            ident = await fetch.policy_id(self.resolver, domain)
            if ident is None:
                if entry.mode is not None:
                    error = f"_mta-sts.{domain} TXT is gone: the cached policy stands until it expires"
            elif force or ident != entry.policy_id or _due(entry, now):
                policy = await fetch.fetch_policy(domain, self.resolver, self.context, self.cfg.mta_sts.timeout,
                                                  self.cfg.mta_sts.https_port)
                expires = db.stamp(now + timedelta(seconds=policy.max_age))
                entry = replace(entry, policy_id=ident, mode=policy.mode, mx=policy.mx, max_age=policy.max_age,
                                fetched_at=stamp, expires_at=expires)
        except fetch.FetchFailed as exc:
            error = str(exc) + ("; the cached policy stands until it expires" if entry.mode else "")
        is_dane = entry.dane
        if self.cfg.mta_sts.dane:
            try:
                is_dane, _why = await dane.has_dane(self.dane_resolver, domain, self.ours)
            except DnsLookupFailed as exc:
                error = error or f"DANE: {exc}"      # keep the last verdict while DNS fails
        else:
            is_dane = False
        return replace(entry, dane=is_dane, answer=answer(entry.policy, is_dane), checked_at=stamp, error=error)

    async def store(self, conn: Connection, before: Cached | None, entry: Cached) -> None:
        domain = entry.domain
        if before is None or entry != before:
            await cache.save(conn, entry)
        if before is None or before.answer != entry.answer:
            log.info("tls_policy for %s: %s", domain, entry.answer or "no MTA-STS/DANE answer")

    async def run(self, conn: Connection, domain: str | None = None, *, force: bool = False) -> list[Cached]:
        """Refresh one domain, or every enabled domain (and forget the rows of the others)."""
        if domain is not None:
            return [await self.one(conn, domain, force=force)]
        async with conn.execute("SELECT name FROM domain WHERE enabled = 1 ORDER BY name") as cur:
            names = [r[0] for r in await cur.fetchall()]
        await cache.forget(conn, set(names))
        known = {c.domain: c for c in await cache.all_cached(conn)}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def decide(name: str) -> Cached | None:
            async with gate:
                try:
                    return await self.decide(name, known.get(name), force=force)
                except Exception:   # one domain's surprise must not stop the others; its row stays
                    log.exception("MTA-STS refresh of %s failed", name)
                    return None

        # DNS and HTTPS side by side; the writes one after another (one connection).
        results = [r for r in await asyncio.gather(*(decide(n) for n in names)) if r is not None]
        for entry in results:
            await self.store(conn, known.get(entry.domain), entry)
        return results
