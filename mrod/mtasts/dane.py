"""DANE for a domain routed by its MX (RFC 7672): whether its MX records and the TLSA records
of every MX host (``_25._tcp.<host>``) are DNSSEC-validated — the AD bit of the configured
resolver, which must validate (mrod asks with the DO bit and trusts its AD; RFC 6840 §5.8:
only over a trusted path, e.g. a resolver on the host itself). Postfix verifies the TLSA
records itself at delivery (``smtp_dns_support_level = dnssec``); this only decides whether
to tell it ``dane`` for the domain."""

from __future__ import annotations

from typing import Any

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.resolver

from mrod.infra.resolver import DnsLookupFailed


def validating(resolver: dns.asyncresolver.Resolver) -> dns.asyncresolver.Resolver:
    """The resolver asking with DO (and AD: RFC 6840 §5.7) so that it says what it validated."""
    resolver.use_edns(0, dns.flags.DO, 1232)
    resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver


async def secure_records(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> tuple[list[Any], bool]:
    """(records, validated): [] for none, and whether the answer had the AD bit."""
    try:
        found = await resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return [], False
    except dns.exception.DNSException as exc:
        raise DnsLookupFailed(f"{rdtype} lookup of {name} failed: {exc}") from None
    validated = bool(found.response.flags & dns.flags.AD)
    return (list(found.rrset) if found.rrset is not None else []), validated


async def mx_hosts(resolver: dns.asyncresolver.Resolver, domain: str) -> tuple[list[str], bool]:
    records, validated = await secure_records(resolver, domain, "MX")
    hosts = [r.exchange.to_text(omit_final_dot=True).lower() for r in records]
    return [h for h in hosts if h not in ("", ".")], validated


async def has_dane(resolver: dns.asyncresolver.Resolver, domain: str, ours: set[str]) -> tuple[bool, str]:
    """Whether every MX host but this host's own names (Postfix never delivers to those) has
    TLSA records, all validated; and why not, for people."""
    hosts, validated = await mx_hosts(resolver, domain)
    if not validated:
        return False, f"the MX records of {domain} are not DNSSEC-validated"
    others = [h for h in hosts if h not in ours]
    if not others:
        return False, f"{domain} has no MX host but this one"
    for host in others:
        records, secure = await secure_records(resolver, f"_25._tcp.{host}", "TLSA")
        if not records or not secure:
            return False, f"{host} has no DNSSEC-validated TLSA record (_25._tcp.{host})"
    return True, f"every MX host of {domain} has DNSSEC-validated TLSA records"


async def resolver_validates(resolver: dns.asyncresolver.Resolver, name: str) -> bool:
    """Whether the resolver sets AD for ``name`` (a name known to be signed)."""
    try:
        return (await secure_records(validating(resolver), name, "SOA"))[1]
    except DnsLookupFailed:
        return False
