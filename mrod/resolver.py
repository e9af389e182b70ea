"""The dnspython resolvers mrod asks (the BIND importer's routes, the DNS checks)."""

from __future__ import annotations

import dns.asyncresolver


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
