"""Change many domains at once: the panel's list, ``mrod domain set A B C`` /
``--filter`` and the API's bulk update all call ``apply``.

A selection is a list of names, or the filters of the domain list (everything matching them).
The change is what mrod.entities.domains.update takes, applied to each selected domain in one
transaction: every domain changed is audited as a single update audits it (one ``update`` row
per domain, before and after), and nothing else. One refusal (a bad value, a name that does not
exist, a domain that is not the user's) refuses the whole change; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


from mrod.infra.dbapi import Connection
from mrod.entities import domains
from mrod.entities.audit import Actor
from mrod.entities.domains import Domain
from mrod.infra import db, names
from mrod.infra.errors import InvalidInput, NotFound
from mrod.infra import enums

# What a bulk change may set: what a single change may, less what only makes sense per domain
# (its source, what decided its route, its owner — the last only from the domain's own page).
FIELDS = ("relay", "host", "port", "protocol", "tls", "mx", "enabled", "include_subdomains", "recipients",
          "paused", "pause_reason", "quota_messages", "quota_bytes", "verify_when_down", "when_primary_up",
          "queue_lifetime")
FILTERS = ("q", "enabled", "source", "relay", "recipients")
MAX_NAMES = 100_000


@dataclass
class Result:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "unchanged": self.unchanged}


def parse_names(text: Iterable[str]) -> list[str]:
    """Names from lines of text (stdin, a form): blank lines and # comments skipped, several per
    line allowed (separated by spaces or commas)."""
    out: list[str] = []
    for line in text:
        out.extend(part for part in line.split("#", 1)[0].replace(",", " ").split() if part)
    return out


def parse_filters(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` words (the CLI's --filter) as the domain list's filters."""
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower()
        if not sep or key not in FILTERS:
            raise InvalidInput("filter", f"{pair!r}: expected KEY=VALUE with KEY one of {', '.join(FILTERS)}")
        found[key] = value.strip()
    return check_filters(found)


def check_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in FILTERS:
            raise InvalidInput("filter", f"{key!r} is not a filter (filters: {', '.join(FILTERS)})")
        if value in (None, ""):
            continue
        if key == "enabled":
            if isinstance(value, str):
                value = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(
                    value.lower(), value)
            if not isinstance(value, bool):
                raise InvalidInput("filter", "enabled must be yes or no")
        elif not isinstance(value, str) or len(value) > 253:
            raise InvalidInput("filter", f"{key} must be text of at most 253 characters")
        elif key == "source":
            value = names.choice(value, enums.SOURCES, "source")
        elif key == "recipients":
            value = names.choice(value, enums.RECIPIENT_POLICIES, "recipients")
        out[key] = value
    return out


async def select(conn: Connection, *, domain_names: list[str] | None = None,
                 filters: Mapping[str, Any] | None = None, owner_id: int | None = None) -> list[Domain]:
    """The domains named (each must exist and, with ``owner_id``, belong to that user), or every
    domain matching the filters (only that user's, with ``owner_id``)."""
    if domain_names is not None and filters is not None:
        raise InvalidInput("domains", "select domains by name or by a filter, not both")
    if domain_names is None and filters is None:
        raise InvalidInput("domains", "select domains by name or by a filter")
    if filters is not None:
        page = await domains.search(conn, **check_filters(filters), owner_id=owner_id, limit=None)
        chosen = page.domains
    else:
        assert domain_names is not None
        if len(domain_names) > MAX_NAMES:
            raise InvalidInput("domains", f"at most {MAX_NAMES} domains at a time")
        chosen, seen = [], set()
        for name in domain_names:
            domain = await domains.get(conn, name)
            if owner_id is not None and domain.owner_id != owner_id:
                raise NotFound(f"domain {domain.name!r}: you may change only your own domains")
            if domain.id not in seen:
                seen.add(domain.id)
                chosen.append(domain)
    if not chosen:
        raise InvalidInput("domains", "no domain is selected" if filters is None else "no domain matches the filter")
    return chosen


def check_change(change: Mapping[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in change.items() if v is not None or k in ("pause_reason", "quota_messages",
                                                                         "quota_bytes", "queue_lifetime")}
    for key in spec:
        if key not in FIELDS:
            raise InvalidInput(key, f"is not a field a bulk change sets (fields: {', '.join(FIELDS)})")
    if not spec:
        raise InvalidInput("change", "nothing to change: choose at least one setting")
    return spec


async def apply(conn: Connection, actor: Actor, change: Mapping[str, Any], *,
                domain_names: list[str] | None = None, filters: Mapping[str, Any] | None = None,
                owner_id: int | None = None) -> Result:
    """Select, then change every selected domain — one transaction, all or nothing."""
    spec = check_change(change)
    result = Result()
    async with db.transaction(conn):
        for domain in await select(conn, domain_names=domain_names, filters=filters, owner_id=owner_id):
            try:
                after = await domains.update(conn, actor, domain.name, **spec)
            except InvalidInput as exc:
                raise InvalidInput(exc.field, f"{domain.name}: {exc.message}") from None
            (result.changed if after != domain else result.unchanged).append(domain.name)
    return result
