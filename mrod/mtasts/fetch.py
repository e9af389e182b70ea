"""Fetching a domain's MTA-STS policy (RFC 8461 §3): the ``_mta-sts`` TXT record through
dnspython, the policy file over HTTPS with a verified certificate (aiohttp). Bounded: one
timeout for the whole fetch, no redirects (§3.3), at most policy.MAX_POLICY_BYTES read."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING

import aiohttp
import dns.asyncresolver
from aiohttp.abc import AbstractResolver, ResolveResult

from mrod.infra.resolver import DnsLookupFailed, make_resolver, query
from mrod.mtasts.policy import MAX_POLICY_BYTES, Policy, PolicyError, parse, txt_id

if TYPE_CHECKING:
    from mrod.infra.config import Config

WELL_KNOWN = "/.well-known/mta-sts.txt"


class FetchFailed(Exception):
    """The policy could not be fetched (DNS, TLS, HTTP, a bad policy); the message says why."""


def resolver_for(cfg: Config) -> dns.asyncresolver.Resolver:
    """[mta_sts] resolver, else [checks] resolver (else the system's)."""
    m = cfg.mta_sts
    server, port = (m.resolver, m.resolver_port) if m.resolver else (cfg.checks.resolver, cfg.checks.resolver_port)
    return make_resolver(server, port, m.timeout)


def ssl_context(cfg: Config) -> ssl.SSLContext:
    """Certificate and host name verified (§3.3), against [mta_sts] ca_file or the system's CAs."""
    ca = cfg.mta_sts.ca_file
    return ssl.create_default_context(cafile=ca or None)


async def policy_id(resolver: dns.asyncresolver.Resolver, domain: str) -> str | None:
    """The TXT id, None when the domain publishes no MTA-STS. Raises FetchFailed."""
    try:
        records = await query(resolver, f"_mta-sts.{domain}", "TXT")
    except DnsLookupFailed as exc:
        raise FetchFailed(str(exc)) from None
    texts = [b"".join(r.strings).decode("utf-8", "replace") for r in records or []]
    try:
        return txt_id(texts)
    except PolicyError as exc:
        raise FetchFailed(f"_mta-sts.{domain}: {exc}") from None


class _Addresses(AbstractResolver):
    """The policy host's addresses from the same resolver as the TXT record (not the system's):
    one view of DNS for the whole look-up."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        found: list[ResolveResult] = []
        for rdtype, fam in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6)):
            if family not in (socket.AF_UNSPEC, fam):
                continue
            try:
                records = await query(self.resolver, host, rdtype) or []
            except DnsLookupFailed as exc:
                raise OSError(str(exc)) from None
            found.extend(ResolveResult(hostname=host, host=str(ipaddress.ip_address(r.address)), port=port,
                                       family=fam, proto=0, flags=socket.AI_NUMERICHOST) for r in records)
        if not found:
            raise OSError(f"{host} has no address")
        return found

    async def close(self) -> None:
        return None


async def fetch_policy(domain: str, resolver: dns.asyncresolver.Resolver, context: ssl.SSLContext,
                       timeout: float, port: int = 443) -> Policy:
    """GET https://mta-sts.<domain>/.well-known/mta-sts.txt and parse it. Raises FetchFailed."""
    host = f"mta-sts.{domain}"
    url = f"https://{host}{'' if port == 443 else f':{port}'}{WELL_KNOWN}"
    limit = aiohttp.ClientTimeout(total=timeout)
    connector = aiohttp.TCPConnector(resolver=_Addresses(resolver), family=socket.AF_UNSPEC, use_dns_cache=False)
    try:
        async with aiohttp.ClientSession(timeout=limit, connector=connector) as session:
            async with session.get(url, ssl=context, allow_redirects=False) as reply:
                if reply.status != 200:
                    raise FetchFailed(f"{url}: HTTP {reply.status} (RFC 8461 §3.3: only 200, no redirects)")
                ctype = reply.headers.get("Content-Type", "")
                if not ctype.lower().startswith("text/plain"):
                    raise FetchFailed(f"{url}: Content-Type {ctype!r}, not text/plain")
                body = await reply.content.read(MAX_POLICY_BYTES + 1)
    except FetchFailed:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ssl.SSLError) as exc:
        raise FetchFailed(f"{url}: {type(exc).__name__}: {exc}"[:300]) from None
    if len(body) > MAX_POLICY_BYTES:
        raise FetchFailed(f"{url}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        return parse(body.decode("utf-8"))
    except (UnicodeDecodeError, PolicyError) as exc:
        raise FetchFailed(f"{url}: {exc}") from None
