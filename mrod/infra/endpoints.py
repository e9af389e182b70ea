"""Listening endpoints as written in the config: ``host:port``, ``[v6]:port`` or ``unix:/path``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    host: str | None = None
    port: int | None = None
    path: str | None = None

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    def postfix(self) -> str:
        """How Postfix names it in a socketmap/tcp/inet table reference."""
        if self.path is not None:
            return f"unix:{self.path}"
        return f"inet:{self.host_for_url()}:{self.port}"

    def host_for_url(self) -> str:
        assert self.host is not None
        return f"[{self.host}]" if ":" in self.host else self.host

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        return f"{self.host_for_url()}:{self.port}"


def parse(text: str) -> Endpoint:
    """Parse an endpoint; ValueError with a message that says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be 'host:port' or 'unix:/path'")
    text = text.strip()
    if text.startswith("unix:"):
        path = text[5:]
        if not path.startswith("/"):
            raise ValueError(f"{text!r}: a unix socket needs an absolute path (unix:/path)")
        return Endpoint(path=path)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r}: write an IPv6 endpoint as [addr]:port")
        port_text = rest
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r}: expected 'host:port' or 'unix:/path'")
        if ":" in host:
            raise ValueError(f"{text!r}: write an IPv6 endpoint as [addr]:port")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: the host must be an IP address (or localhost)") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return Endpoint(host=host, port=int(port_text))
