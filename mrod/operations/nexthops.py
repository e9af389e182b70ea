"""Auto-flush for every route: the next hops of mail waiting in Postfix's queue, probed with
the same hysteresis as relay health, flushed the moment they answer again.

HealthMonitor watches relays (and flushes their domains when one comes back). A domain may
also be routed by its own host override (``relay:[host]:port``) or by its MX records
(``relay:example.com``): nobody watched those, so their mail waited for Postfix's next retry,
up to maximal_backoff_time. Here, each round:

1. the queue (``postqueue -j``) says which recipient domains have mail waiting;
2. routing.match (the one place routes are decided) gives each one's route; relay routes are
   left to HealthMonitor, the others grouped by next hop — a host override's host and port,
   or, for an MX route, the recipient domain whose most preferred MX hosts (not this host:
   [checks] mx_names) are tried in turn;
3. every distinct next hop is probed with health.probe (the same SMTP dialogue as relays);
4. health.next_state applies [health] down_after / up_after; on a transition to ``up`` the
   hop's waiting domains are flushed (``postqueue -s``) if [health] flush_on_up.

States live in memory, only for hops that have mail waiting: a hop whose mail is gone is
forgotten; after a restart a hop starts ``unknown``, and its first answer flushes (mail may
have been deferred while mrod was not watching), as for relays.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

import dns.asyncresolver

from mrod.answers import routing
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.infra.resolver import DnsLookupFailed, make_resolver, query
from mrod.operations import health, queueflush, queueread, queueroutes

log = logging.getLogger("mrod.nexthops")

MX_PORT = 25          # Postfix delivers to MX hosts on the SMTP port
Prober = Callable[..., Awaitable[health.Probe]]


@dataclass(frozen=True, slots=True)
class NextHop:
    kind: str           # "host": a host override; "mx": the MX records of `host` (a domain)
    host: str
    port: int
    protocol: str
    tls: str

    def label(self) -> str:
        return f"MX of {self.host}" if self.kind == "mx" else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class HopTransition:
    hop: NextHop
    before: str
    after: str
    detail: str
    domains: tuple[str, ...]


def waiting_hops(domains: list[str], store: routing.Store) -> dict[NextHop, set[str]]:
    """Recipient domains with mail waiting, grouped by the next hop their route names; relay
    routes (HealthMonitor's) and domains not ours are left out."""
    hops: dict[NextHop, set[str]] = {}
    for recipient_domain in domains:
        found = routing.match(store, recipient_domain)
        if found is None:
            continue
        row = found[0]
        if row.via_relay:
            continue
        if row.host is not None:
            hop = NextHop("host", row.host, row.port or 25, row.protocol or "smtp", row.tls or "may")
        else:
            hop = NextHop("mx", recipient_domain, MX_PORT, "smtp", row.tls or "may")
        hops.setdefault(hop, set()).add(recipient_domain)
    return hops


def _waiting_hops_now(cfg: Config, domains: list[str]) -> dict[NextHop, set[str]]:
    """waiting_hops against the configured engine's routes, opened and closed on this thread."""
    found = queueroutes.routes(cfg)
    if found is None:
        raise DatabaseNotReady(f"database {Target.of(cfg.database).describe()} cannot be used")
    store, close = found
    try:
        return waiting_hops(domains, store)
    finally:
        close()


class NextHopMonitor:
    """One round per [health] interval inside ``mrod serve`` (mrod.operations.servejobs)."""

    def __init__(self, cfg: Config, *, prober: Prober = health.probe,
                 resolver: dns.asyncresolver.Resolver | None = None, mx_port: int = MX_PORT) -> None:
        self.cfg = cfg
        self.settings = cfg.health
        self.prober = prober
        self.resolver = resolver
        self.mx_port = mx_port
        self.states: dict[NextHop, health.State] = {}
        self.last_flush: list[queueflush.FlushResult] = []

    async def run_once(self) -> list[HopTransition]:
        """Raises mrod.operations.postqueue.QueueUnavailable when the queue cannot be read (the job logs it)."""
        report = await queueread.read(self.cfg, classify_rows=False)
        # A route store waits (a busy SQLite, a PostgreSQL round trip per domain): not on the loop.
        hops = await asyncio.to_thread(_waiting_hops_now, self.cfg, sorted(report.domains))
        self.states = {hop: state for hop, state in self.states.items() if hop in hops}
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(hop: NextHop) -> health.Probe:
            async with gate:
                return await self.probe(hop)

        ordered = sorted(hops, key=lambda h: (h.kind, h.host, h.port))
        probes = await asyncio.gather(*(one(hop) for hop in ordered))
        now = db.now()
        transitions: list[HopTransition] = []
        to_flush: set[str] = set()
        for hop, result in zip(ordered, probes, strict=True):
            current = self.states.get(hop, health.State())
            new = health.next_state(current, result.ok, down_after=self.settings.down_after,
                                    up_after=self.settings.up_after, now=now)
            self.states[hop] = new
            if new.state == current.state:
                continue
            waiting = tuple(sorted(hops[hop]))
            transitions.append(HopTransition(hop, current.state, new.state, result.detail, waiting))
            (log.info if new.state == "up" else log.warning)(
                "next hop %s is %s (was %s): %s; mail waiting for %s", hop.label(), new.state, current.state,
                result.detail, ", ".join(waiting))
            if new.state == "up":
                to_flush.update(waiting)
        self.last_flush = await queueflush.flush(self.cfg, to_flush) if to_flush and self.settings.flush_on_up else []
        return transitions

    async def probe(self, hop: NextHop) -> health.Probe:
        if hop.kind == "host":
            return await self._probe(hop.host, hop.port, hop)
        try:
            hosts = await self.mx_hosts(hop.host)
        except DnsLookupFailed as exc:
            return health.Probe(False, None, None, str(exc))
        if not hosts:
            return health.Probe(False, None, None, f"{hop.host} has no MX host more preferred than this host")
        result = health.Probe(False, None, None, "no MX host tried")
        for host in hosts:        # Postfix, too, tries the next MX when one does not answer
            # Resolved by the same resolver as the MX records, as Postfix resolves them.
            try:
                addresses = [r.address for rdtype in ("A", "AAAA")
                             for r in (await query(self._resolver(), host, rdtype) or [])]
            except DnsLookupFailed as exc:
                result = health.Probe(False, None, None, str(exc))
                continue
            for address in addresses:
                result = await self._probe(address, self.mx_port, hop)
                if result.ok:
                    return result
            if not addresses:
                result = health.Probe(False, None, None, f"MX host {host} has no address")
        return result

    async def _probe(self, host: str, port: int, hop: NextHop) -> health.Probe:
        return await self.prober(host, port, protocol=hop.protocol, tls=hop.tls, timeout=self.settings.timeout,
                                 helo=self.settings.helo_name)

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self.resolver is None:      # the DNS checks' resolver ([checks] resolver)
            checks = self.cfg.checks
            self.resolver = make_resolver(checks.resolver, checks.resolver_port, checks.timeout)
        return self.resolver

    async def mx_hosts(self, domain: str) -> list[str]:
        """The MX hosts Postfix would deliver to: by preference, those more preferred than this
        host ([checks] mx_names); without mx_names, the most preferred ones."""
        records = await query(self._resolver(), domain, "MX") or []
        ranked = sorted((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in records)
        ranked = [(pref, host) for pref, host in ranked if host]          # a null MX ("0 .") has none
        ours = {name.lower().rstrip(".") for name in self.cfg.checks.mx_names}
        own = [pref for pref, host in ranked if host in ours]
        if own:
            return [host for pref, host in ranked if pref < min(own)]
        best = ranked[0][0] if ranked else None
        return [host for pref, host in ranked if pref == best]
