"""DNS-check findings about the backup's own standing in a domain's transport security (issue
22.3), for mrod.operations.checks: each says what to fix.

* ``sts-mx-missing`` — the domain's cached MTA-STS policy lists no ``mx:`` pattern that matches
  this host's MX names ([checks] mx_names): under ``enforce`` compliant senders refuse to
  deliver here at all (error), under ``testing`` they report it (warning);
* ``tlsa-missing`` — the domain's MX records are DNSSEC-signed (the resolver sets AD) but this
  host's MX name has no TLSA record: DANE senders treat this MX as unauthenticated (warning);
* ``sts-stricter-than-relay`` — the domain is delivered via a relay or host override whose TLS
  setting is below ``verify`` while the domain publishes DANE or an enforce MTA-STS policy: the
  hop from here to the primary is weaker than the domain asks of everyone else (warning).

The policies come from the mta_sts cache (the refresh job fetches them): the checks fetch
nothing over HTTPS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar

import dns.asyncresolver

from mrod.infra.dbapi import Connection
from mrod.infra.enums import StsMode, TLS_LEVELS
from mrod.mtasts import cache, dane
from mrod.mtasts.cache import Cached
from mrod.mtasts.policy import mx_matches

_VERIFY_RANK = TLS_LEVELS.index("verify")


F = TypeVar("F")


@dataclass
class Known:
    """What the checks read once per run: the cached policies and each domain's TLS level."""

    policies: dict[str, Cached] = field(default_factory=dict)
    tls: dict[str, str] = field(default_factory=dict)


async def load(conn: Connection) -> Known:
    async with conn.execute("SELECT d.name, coalesce(r.tls, d.tls, 'may') FROM domain d"
                            " LEFT JOIN relay r ON r.id = d.relay_id") as cur:
        tls = {r[0]: r[1] for r in await cur.fetchall()}
    return Known({c.domain: c for c in await cache.all_cached(conn)}, tls)


async def add(known: Known, resolver: dns.asyncresolver.Resolver, domain: str, relayed_via: str | None,
              mine: list[str], mx_names: set[str], make: Callable[[str, str, str, str], F],
              emit: Callable[[F], None]) -> None:
    """The findings for one domain. ``mine``: this host's names among the domain's MX hosts;
    ``relayed_via``: the relay (or "its host override") when the domain has an explicit host."""
    cached = known.policies.get(domain)
    ours = sorted(set(mine) or mx_names)
    if cached is not None and cached.mode in (StsMode.ENFORCE, StsMode.TESTING) and ours:
        if not any(mx_matches(p, host) for p in cached.mx for host in ours):
            enforce = cached.mode == StsMode.ENFORCE
            effect = ("compliant senders refuse to deliver to this backup at all" if enforce
                      else "compliant senders report every delivery here as a failure (TLS-RPT)")
            emit(make("error" if enforce else "warning", "sts-mx-missing",
                      f"the MTA-STS policy of {domain} ({cached.mode}) lists mx {', '.join(cached.mx)}, "
                      f"none of which matches this host ({', '.join(ours)}): {effect}",
                      f"add `mx: {ours[0]}` to https://mta-sts.{domain}/.well-known/mta-sts.txt and change "
                      f"the id of `_mta-sts.{domain}` TXT so senders fetch it again"))
    if cached is not None and cached.answer is not None and relayed_via is not None:
        own = known.tls.get(domain, "may")
        if own in TLS_LEVELS and TLS_LEVELS.index(own) < _VERIFY_RANK:
            what = "DANE (TLSA under DNSSEC)" if cached.dane else "an enforce MTA-STS policy"
            emit(make("warning", "sts-stricter-than-relay",
                      f"{domain} publishes {what}, but it is delivered via {relayed_via} with TLS {own!r}: "
                      "the hop from this backup to the primary is weaker than the domain asks of senders",
                      f"set the TLS of {relayed_via} to verify or secure (`mrod relay set NAME --tls secure`), "
                      "with a certificate the primary's name matches"))
    if mine:
        _hosts, signed = await dane.mx_hosts(resolver, domain)
        if signed:
            for host in mine:
                records, _ = await dane.secure_records(resolver, f"_25._tcp.{host}", "TLSA")
                if not records:
                    emit(make("warning", "tlsa-missing",
                              f"the MX records of {domain} are DNSSEC-signed, but this host's MX name {host} has "
                              "no TLSA record: DANE senders cannot authenticate this backup",
                              f"publish `_25._tcp.{host}. TLSA 3 1 1 <sha256 of the public key of "
                              "smtpd_tls_cert_file>` in a signed zone (docs/tls.md)"))
