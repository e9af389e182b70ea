"""What a source returned, as mrod's recipient keys grouped by the domain they belong to (pure).

Accepted shapes of a URL source (docs/recipient-sources.md):
  * JSON: a list of addresses ``["a@example.com", …]``; a list of objects with an ``address``,
    ``email`` or ``mail`` field; or an object holding such a list under ``addresses`` or
    ``recipients``.
  * CSV: one address per line, or a header row naming an ``address``/``email``/``mail``
    column; empty lines and lines starting with ``#`` are skipped.
Any value may carry Active Directory's ``proxyAddresses`` prefix: ``smtp:`` and
``SMTP:`` are taken off; other prefixes (``X500:``, ``SIP:``) are not addresses and skipped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from mrod.infra import names
from mrod.infra.errors import InvalidInput, MrodError

FIELDS = ("address", "email", "mail")
LISTS = ("addresses", "recipients")
_PREFIX = re.compile(r"^([A-Za-z0-9]+):(?!//)")


class BadAnswer(MrodError):
    """A source's answer is not in a shape mrod reads."""


def from_json(body: bytes) -> list[str]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadAnswer(f"the answer is not JSON: {exc}") from None
    if isinstance(data, dict):
        data = next((data[k] for k in LISTS if isinstance(data.get(k), list)), None)
        if data is None:
            raise BadAnswer(f"a JSON object must hold a list under {' or '.join(LISTS)}")
    if not isinstance(data, list):
        raise BadAnswer("the JSON answer must be a list of addresses or of objects with an address field")
    found = []
    for item in data:
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            value = next((item[k] for k in FIELDS if isinstance(item.get(k), str)), None)
            if value is None:
                raise BadAnswer(f"a JSON object in the list has no {'/'.join(FIELDS)} field")
            found.append(value)
        else:
            raise BadAnswer("the JSON list must hold addresses (text) or objects")
    return found


def from_csv(body: bytes) -> list[str]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadAnswer("the CSV answer is not UTF-8") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip() and not r[0].lstrip().startswith("#")]
    column = 0
    if rows:
        header = [c.strip().lower() for c in rows[0]]
        wanted = next((f for f in FIELDS if f in header), None)
        if wanted is not None:
            column, rows = header.index(wanted), rows[1:]
    return [r[column] for r in rows if len(r) > column]


def directory_value(value: str) -> str | None:
    """A directory attribute value as an address: ``smtp:``/``SMTP:`` taken off, other
    prefixed values (X500:, SIP:) None."""
    match = _PREFIX.match(value.strip())
    if match is None:
        return value
    return value.strip()[match.end():] if match.group(1).lower() == "smtp" else None


@dataclass
class Grouped:
    """Addresses by fed domain; ``ignored``: valid addresses of domains the source does not
    feed; ``invalid``: values that are not addresses (a few examples kept for the operator)."""
    by_domain: dict[str, set[str]] = field(default_factory=dict)
    ignored: int = 0
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_domain.values())


def group(values: Iterable[str], fed: Mapping[str, bool], known: Mapping[str, bool]) -> Grouped:
    """``values`` as recipient keys grouped by the fed domain each belongs to.

    ``fed``: the fed domains' names; ``known``: every domain here, name → include_subdomains
    (an address belongs to its own domain or to a parent that includes subdomains, as mrod's
    recipients do).
    """
    out = Grouped(by_domain={name: set() for name in fed})
    for raw in values:
        try:
            value = directory_value(raw)
            if value is None:
                raise InvalidInput("address", "a prefixed value that is not smtp:")
            key = names.address(value)
        except InvalidInput:
            out.invalid += 1
            if len(out.invalid_examples) < 3:
                out.invalid_examples.append(str(raw)[:80])
            continue
        owner = names.deciding_domain(key.rpartition("@")[2], known, bool)
        if owner is None or owner not in fed:
            out.ignored += 1
        else:
            out.by_domain[owner].add(key)
    return out


def as_text(values: Iterable[Any]) -> list[str]:
    """Driver values (str, bytes) as text; None and empty values dropped."""
    found = []
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
    return found
