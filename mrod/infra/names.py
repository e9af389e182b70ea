"""Validation and normalisation of the names mrod stores: domains (IDNA A-labels),
host names, ports, relay names and recipient addresses.

Two flavours: strict validators for input (raise InvalidInput with a clear message) and a
cheap ``lookup_domain`` for the hot path, which only normalises (the database decides).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Mapping, TypeVar

import idna

from mrod.infra.errors import InvalidInput
from mrod.infra.limits import (
    MAX_ADDRESS_LENGTH,
    MAX_DOMAIN_LENGTH,
    MAX_LABEL_LENGTH,
    MAX_LOCAL_PART_LENGTH,
    MAX_NAME_LENGTH,
)

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_RELAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Local parts we refuse: control characters, whitespace, and '@' (we split at the last '@',
# but a stored local part with '@' would be ambiguous to read back). A quoted local part may
# hold spaces.
_BAD_LOCAL = re.compile(r"[\x00-\x20\x7f@]")
_BAD_QUOTED_LOCAL = re.compile(r"[\x00-\x1f\x7f]")

T = TypeVar("T")


def _to_alabel(text: str, field: str) -> str:
    """Lowercase A-label form of a (possibly Unicode) name, or InvalidInput."""
    try:
        if text.isascii():
            lowered = text.lower()
            # An ASCII name may still hold xn-- labels: check they decode, and re-encode so
            # a non-canonical A-label is refused rather than stored twice in two spellings.
            if "xn--" in lowered:
                if idna.encode(idna.decode(lowered)).decode("ascii") != lowered:
                    raise InvalidInput(field, f"{text!r} is not a canonical IDNA name")
            return lowered
        return idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput(field, f"{text!r} is not a valid internationalised name ({exc})") from None
    except UnicodeError as exc:
        raise InvalidInput(field, f"{text!r} is not a valid name ({exc})") from None


def domain(value: object, field: str = "domain", *, min_labels: int = 2) -> str:
    """A mail domain as stored: lowercase A-labels, no trailing dot, LDH labels."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a text value")
    text = value.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidInput(field, "is empty")
    if any(c.isspace() for c in text):
        raise InvalidInput(field, f"{value!r} contains white space")
    name = _to_alabel(text, field)
    if len(name) > MAX_DOMAIN_LENGTH:
        raise InvalidInput(field, f"{value!r} is longer than {MAX_DOMAIN_LENGTH} characters")
    labels = name.split(".")
    if len(labels) < min_labels:
        raise InvalidInput(field, f"{value!r} needs at least {min_labels} labels (e.g. example.com)")
    for label in labels:
        if not label:
            raise InvalidInput(field, f"{value!r} has an empty label")
        if len(label) > MAX_LABEL_LENGTH:
            raise InvalidInput(field, f"{value!r} has a label longer than {MAX_LABEL_LENGTH} characters")
        if not _LDH_LABEL.match(label):
            raise InvalidInput(
                field, f"{value!r}: label {label!r} may hold only letters, digits and inner hyphens"
            )
    if labels[-1].isdigit():
        raise InvalidInput(field, f"{value!r} looks like an IP address, not a domain")
    return name


def hostname(value: object, field: str = "host") -> str:
    """A relay host: a DNS name (one label allowed) or an IPv4/IPv6 address."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a text value")
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    return domain(text, field, min_labels=1)


def port(value: object, field: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(field, "must be a number from 1 to 65535")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise InvalidInput(field, f"{value!r} is not a number (1 to 65535)")
        value = int(text)
    if not 1 <= value <= 65535:
        raise InvalidInput(field, f"{value} is out of range (1 to 65535)")
    return value


def relay_name(value: object, field: str = "name") -> str:
    """Relay names: short, no spaces, not all digits (a TXT route may name a relay by id)."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a text value")
    text = value.strip()
    if not text:
        raise InvalidInput(field, "is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInput(field, f"is longer than {MAX_NAME_LENGTH} characters")
    if not _RELAY_NAME.match(text):
        raise InvalidInput(field, f"{text!r} may hold only letters, digits, '.', '_' and '-'")
    if text.isdigit():
        raise InvalidInput(field, f"{text!r} is all digits; relay ids and names must not be confused")
    return text


def choice(value: object, allowed: tuple[str, ...], field: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value.strip().lower()


def address(value: object, field: str = "address") -> str:
    """A recipient address as stored: casefolded ``local@domain`` or ``@domain`` (catch-all)."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a text value")
    text = value.strip()
    if "@" not in text:
        raise InvalidInput(field, f"{value!r} is not an address (user@domain, or @domain for all)")
    local, _, dom = text.rpartition("@")
    if not dom.strip():
        raise InvalidInput(field, f"{value!r} has no domain after '@'")
    try:
        name = domain(dom, field)
    except InvalidInput as exc:
        raise InvalidInput(field, f"{value!r}: the domain {exc.message}") from None
    if local:
        quoted = is_quoted(local)
        local = unquote_local(local)
        if not local or len(local.encode()) > MAX_LOCAL_PART_LENGTH:
            raise InvalidInput(field, f"local part of {value!r} is empty or longer than {MAX_LOCAL_PART_LENGTH} bytes")
        if (_BAD_QUOTED_LOCAL if quoted else _BAD_LOCAL).search(local):
            raise InvalidInput(field, f"local part of {value!r} holds spaces, control characters or '@'"
                               " (quote it to use spaces)")
    result = f"{local.casefold()}@{name}"
    if len(result) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(field, f"{value!r} is longer than {MAX_ADDRESS_LENGTH} characters")
    return result


def is_quoted(local: str) -> bool:
    return len(local) >= 2 and local[0] == '"' and local[-1] == '"'


def unquote_local(local: str) -> str:
    """RFC 5321 quoted local part -> Postfix's internal form (``"john doe"`` -> ``john doe``)."""
    if not is_quoted(local):
        return local
    inner, out, escaped = local[1:-1], [], False
    for ch in inner:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


def lookup_domain(key: str) -> str | None:
    """Normalise a domain key from Postfix for lookup; None if it cannot be a stored domain.

    Cheap on the common (ASCII) path. Address literals like ``[192.0.2.1]`` and names that do
    not survive IDNA return None: no stored domain can match them.
    """
    if key.isascii():
        name = key.lower()
        if name.endswith("."):
            name = name[:-1]
        if not name or name.startswith("[") or len(name) > MAX_DOMAIN_LENGTH:
            return None
        return name
    try:
        return idna.encode(key.rstrip("."), uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None


def parent_domains(name: str) -> list[str]:
    """``a.b.example.com`` -> ``[b.example.com, example.com]`` (never the bare TLD)."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def deciding_domain(name: str, found: Mapping[str, T], includes_subdomains: Callable[[T], bool]) -> str | None:
    """Of the domains ``found`` among ``name`` and its parent_domains, the one that decides for
    ``name``: itself, else the closest parent that includes subdomains; None when none does.
    The one matcher of routing (what Postfix is told) and of recipients (whose address it is)."""
    if name in found:
        return name
    for parent in parent_domains(name):
        row = found.get(parent)
        if row is not None and includes_subdomains(row):
            return parent
    return None


def to_unicode(name: str) -> str:
    """Display form of an A-label name; the A-label itself when it does not decode."""
    if "xn--" not in name:
        return name
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name
