"""The dnspython resolvers mrod asks, and how it asks them (the BIND importer's routes, the DNS
checks)."""

from __future__ import annotations

from typing import Any, Iterable

import dns.asyncresolver
import dns.exception
import dns.resolver


def make_resolver(server: str, port: int, timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver asking `server`:`port`, or the system's resolvers (/etc/resolv.conf) when
    `server` is empty. `timeout` bounds a whole lookup; one try waits at most 2 s, so
    dnspython retries within it."""
    if server:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [server]
        resolver.port = port
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


class DnsLookupFailed(Exception):
    """A lookup that gave no verdict (timeout, SERVFAIL/REFUSED, another DNS error)."""


async def query(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> list[Any] | None:
    """The records of `name`: [] when the name has none of that type, None when the name does
    not exist (NXDOMAIN). No search list. A lookup without a verdict raises DnsLookupFailed."""
    try:
        answer = await resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.LifetimeTimeout:
        raise DnsLookupFailed(f"{rdtype} lookup of {name} timed out") from None
    except dns.resolver.NoNameservers:
        raise DnsLookupFailed(f"{rdtype} lookup of {name} failed (SERVFAIL or REFUSED)") from None
    except dns.exception.DNSException as exc:
        raise DnsLookupFailed(f"{rdtype} lookup of {name} failed: {exc}") from None
    return list(answer.rrset) if answer.rrset is not None else []


def txt_relay_refs(records: Iterable[Any], prefix: str) -> set[str]:
    """The relay references (id or name, as written) of the ``<prefix><relay>`` TXT records
    among ``records`` (dnspython TXT rdata); the prefix is matched in any case. The one parser
    of MRoD's TXT route, for the importer and for the DNS checks. An empty reference ('' in the
    set) is a record that names no relay."""
    prefix = prefix.lower()
    refs = set()
    for rdata in records:
        text = b"".join(rdata.strings).decode("utf-8", "replace").strip()
        if text.lower().startswith(prefix):
            refs.add(text[len(prefix):].strip())
    return refs
