"""A route for each imported domain, by MRoD's strategies, tried in the [bind] order:

* ``dns-txt`` — a TXT record on the domain ``<txt_prefix><relay id or name>``
  (``mrodxmailrelay=primary``): deliver through that relay;
* ``dns-dom`` — the domain has MX records: deliver by them (``relay:example.com``);
* ``dns-sub`` — ``<sub_label>.<domain>`` has an address: deliver to ``[mail.example.com]:25``.

A strategy that finds nothing passes to the next. A DNS failure (timeout, SERVFAIL, REFUSED)
stops the search for that domain only — guessing past an unanswered question could pick the
wrong primary — and is reported. Lookups run concurrently, bounded by dns_concurrency, each
bounded in time by dns_timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import dns.asyncresolver
import dns.name

from mrod.infra.resolver import DnsLookupFailed, query, txt_relay_refs
from mrod.infra.resolver import make_resolver as dns_resolver

if TYPE_CHECKING:
    from mrod.infra.config import BindConfig


@dataclass(frozen=True)
class Route:
    strategy: str                 # dns-txt | dns-dom | dns-sub
    relay_ref: str | None = None  # dns-txt: a relay id or name, as the TXT record says
    host: str | None = None       # dns-sub
    port: int | None = None       # dns-sub

    def describe(self) -> str:
        if self.strategy == "dns-txt":
            return f"dns-txt: relay {self.relay_ref}"
        if self.strategy == "dns-sub":
            return f"dns-sub: [{self.host}]:{self.port}"
        return "dns-dom: by its MX records"


@dataclass(frozen=True)
class NoRoute:
    reason: str
    temporary: bool = False       # a DNS failure: the answer may differ next time


def make_resolver(bind: "BindConfig") -> dns.asyncresolver.Resolver:
    """A resolver on [bind] resolver:resolver_port, or the system's when resolver is empty."""
    return dns_resolver(bind.resolver, bind.resolver_port, bind.dns_timeout)


class RouteFinder:
    def __init__(self, bind: "BindConfig", resolver: dns.asyncresolver.Resolver | None = None) -> None:
        self.bind = bind
        self.resolver = resolver or make_resolver(bind)

    async def find(self, domain: str) -> Route | NoRoute:
        tried: list[str] = []
        try:
            for strategy in self.bind.strategies:
                if strategy == "dns-txt":
                    found = await self._txt(domain, tried)
                elif strategy == "dns-dom":
                    found = await self._mx(domain, tried)
                else:
                    found = await self._sub(domain, tried)
                if found is not None:
                    return found
        except DnsLookupFailed as exc:
            return NoRoute(f"DNS lookup failed: {exc}", temporary=True)
        return NoRoute("no usable route (" + "; ".join(tried) + ")")

    async def _txt(self, domain: str, tried: list[str]) -> Route | NoRoute | None:
        records = await query(self.resolver, domain, "TXT")
        if records is None:
            return NoRoute(f"{domain} does not exist in DNS")
        values = txt_relay_refs(records, self.bind.txt_prefix)
        if len(values) > 1:
            return NoRoute(f"several {self.bind.txt_prefix} TXT records disagree: {', '.join(sorted(values))}")
        if values:
            ref = values.pop()
            if not ref:
                return NoRoute(f"the {self.bind.txt_prefix} TXT record names no relay")
            return Route("dns-txt", relay_ref=ref)
        tried.append(f"no {self.bind.txt_prefix} TXT record")
        return None

    async def _mx(self, domain: str, tried: list[str]) -> Route | NoRoute | None:
        records = await query(self.resolver, domain, "MX")
        if records is None:
            return NoRoute(f"{domain} does not exist in DNS")
        # RFC 7505 null MX ("0 ."): the domain accepts no mail at all.
        usable = [r for r in records if r.exchange != dns.name.root]
        if usable:
            return Route("dns-dom")
        tried.append("a null MX record" if records else "no MX record")
        return None

    async def _sub(self, domain: str, tried: list[str]) -> Route | None:
        host = f"{self.bind.sub_label}.{domain}"
        for rdtype in ("A", "AAAA"):
            records = await query(self.resolver, host, rdtype)
            if records:
                return Route("dns-sub", host=host, port=self.bind.sub_port)
            if records is None:      # no such name: no AAAA either
                break
        tried.append(f"{host} has no address")
        return None

    async def find_all(self, domains: Iterable[str]) -> dict[str, Route | NoRoute]:
        """Routes for many domains, at most dns_concurrency lookups at a time."""
        pending = list(domains)
        results: dict[str, Route | NoRoute] = {}
        queue = iter(pending)

        async def worker() -> None:
            for domain in queue:    # a shared iterator: each domain is taken by one worker
                results[domain] = await self.find(domain)

        # A TaskGroup: a bug in one worker cancels the others instead of leaving them running.
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.bind.dns_concurrency, len(pending))):
                group.create_task(worker())
        return results
