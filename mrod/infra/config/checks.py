"""Validators for config values, run by the loader after type conversion.

Each takes the converted value and returns it (possibly normalised) or raises ValueError with
a message the loader prefixes with the key. Names, ports and labels are judged by
mrod.infra.names, as everywhere else in mrod.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable

from mrod.infra import endpoints, names
from mrod.infra.enums import MAPS
from mrod.infra.errors import InvalidInput


def check(fn: Callable[[Any], Any]) -> dict[str, Any]:
    """Field metadata: a validator run after type conversion."""
    return {"check": fn}


def _names(fn: Callable[..., Any], value: Any, **kwargs: Any) -> Any:
    """Run a names.py validator; its InvalidInput becomes the ValueError the loader expects."""
    try:
        return fn(value, "value", **kwargs)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def endpoint(value: str) -> str:
    endpoints.parse(value)
    return value


def optional_endpoint(value: str) -> str:
    return value if value == "" else endpoint(value)


def positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def port_number(value: int) -> int:
    return _names(names.port, value)


def delimiter(value: str) -> str:
    if len(value) > 8 or any(c.isalnum() or c.isspace() or c == "@" for c in value):
        raise ValueError("must be a few punctuation characters such as '+' or '+-'")
    return value


def service_name(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError("must be a master.cf service name such as 'relay'")
    return value


def tcp_tables(value: dict[str, str]) -> dict[str, str]:
    for name, ep in value.items():
        if name not in MAPS:
            raise ValueError(f"unknown map {name!r} (maps: {', '.join(MAPS)})")
        try:
            endpoints.parse(ep)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return value


def one_of(*allowed: str) -> Callable[[str], str]:
    def checked(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(str(a)) for a in allowed)}")
        return value
    return checked


def int_range(low: int, high: int) -> Callable[[int], int]:
    def checked(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value
    return checked


def subset(allowed: tuple[str, ...], *, empty_ok: bool = False) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    def checked(value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if item not in allowed:
                raise ValueError(f"unknown value {item!r} (allowed: {', '.join(allowed)})")
        if len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        if not value and not empty_ok:
            raise ValueError(f"must name at least one of {', '.join(allowed)}")
        return value
    return checked


def ip_or_empty(value: str) -> str:
    if value:
        ipaddress.ip_address(value)   # ValueError names the bad text
    return value


def ip_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(ipaddress.ip_address(item.strip())) for item in value)


def networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """CIDR networks ("192.0.2.0/24", "2001:db8::/32"; an address alone is one host). Host bits
    set ("192.0.2.1/24") are refused: a typo more often than a choice."""
    found = []
    for item in value:
        try:
            found.append(str(ipaddress.ip_network(item.strip())))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a network: {exc}") from None
    return tuple(found)


def zone_patterns(value: tuple[str, ...]) -> tuple[str, ...]:
    # Zone names, not mail domains: BIND zones may be single labels ("localhost") or hold '_'.
    for item in value:
        name = item[2:] if item.startswith("*.") else item
        if not name or any(c.isspace() or c in "*/\\" for c in name):
            raise ValueError(f"{item!r} must be a zone name or '*.suffix'")
    return tuple(item.lower().rstrip(".") for item in value)


def dns_label(value: str) -> str:
    if "." in value:
        raise ValueError(f"{value!r} must be one DNS label such as 'mail'")
    return str(_names(names.domain, value, min_labels=1))


def node_name(value: str) -> str:
    # Host-name labels: letters, digits, '-' (not at either end), dots between labels.
    text = value.strip().lower().rstrip(".")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} must be a host name such as 'mx2' or 'mx2.example.net'")
    return text


_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def host_names(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_names(names.domain, item) for item in value)


def txt_prefix(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be non-empty text without spaces, e.g. 'mrodxmailrelay='")
    return value


def absolute_or_empty(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError("must be an absolute directory such as '/etc/postfix' (or \"\" for Postfix's own)")
    return value


def database_url(value: str) -> str:
    # Never echo the value: it may carry a password.
    if value and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL (or empty for SQLite at database.path)")
    return value


def absolute_file(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")
    return value
