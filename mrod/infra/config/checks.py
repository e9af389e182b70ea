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


def share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be a share between 0 and 1 (0.2 = 20%)")
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
    """Addresses or CIDR networks ("192.0.2.10", "2001:db8::/64"), normalised; a network with host
    bits set ("192.0.2.1/24") is refused rather than silently widened."""
    found: list[str] = []
    for item in value:
        try:
            net = ipaddress.ip_network(item.strip(), strict=False)
            given = ipaddress.ip_address(item.strip().split("/")[0])
        except ValueError:
            raise ValueError(f"{item!r} is not an IPv4/IPv6 address or CIDR network "
                             "(such as '192.0.2.10' or '2001:db8::/64')") from None
        if net.network_address != given:
            raise ValueError(f"{item!r} has host bits set: write the network, {net}")
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        if text in found:
            raise ValueError(f"lists {text} twice")
        found.append(text)
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


def postsuper(value: str) -> str:
    if value.startswith("unix:") and not value[5:].startswith("/"):
        raise ValueError("unix: needs the helper socket's absolute path, e.g. 'unix:/run/mrod-postsuper.sock'")
    if not value.strip():
        raise ValueError("must be a command line (e.g. 'postsuper') or 'unix:/run/mrod-postsuper.sock'")
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


def mailbox(value: str) -> str:
    """One mail address (user@domain) to send to or from."""
    result = str(_names(names.address, value))
    if result.startswith("@"):
        raise ValueError(f"{value!r} must be an address such as 'postmaster@example.net'")
    return result


def mailbox_or_empty(value: str) -> str:
    return value if value == "" else mailbox(value)


def mailboxes(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(mailbox(item) for item in value)


def host_port(value: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[IPv6]:port"; the host a name or an address."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{value!r} must be 'host:port' such as 'mail.example.net:25' (or \"\" for sendmail)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = str(_names(names.hostname, host))
    return host, int(_names(names.port, int(port)))


def smtp_host(value: str) -> str:
    if value:
        host_port(value)
    return value


def http_url(value: str) -> str:
    if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise ValueError(f"{value!r} must be an http:// or https:// URL (or \"\" for none)")
    return value
