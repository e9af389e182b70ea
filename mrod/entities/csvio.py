"""Domains as CSV: export every field, import all or nothing with a preview.

Columns (a header row names them; any order; only ``name`` is required)::

    name, relay, host, port, protocol, tls, mx, enabled, include_subdomains, recipients,
    paused, pause_reason, quota_messages, quota_bytes, verify_when_down, when_primary_up, owner, source, queue_lifetime

An export read back in changes nothing. On import, a row adds a domain that does not exist and
changes one that does — only the values that differ, so a domain the BIND importer routed keeps
its route unless the row gives another. The route is ``relay``, else ``host`` (with port,
protocol, tls), else ``mx`` = yes (with tls); all empty: unchanged (a new domain needs one).
Yes/no columns take yes/no/true/false/1/0; empty is "unchanged" (for a new domain: the default).
An empty quota means [policy]'s default, an empty queue_lifetime ('3d', '12h') Postfix's
maximal_queue_lifetime, an empty pause_reason none, an empty owner nobody.

``run`` does the whole import inside one transaction and reports what it did; with
``apply=False`` (the preview) it rolls the transaction back, so the preview is exactly what the
import would do. Any refused row refuses them all (CsvRefused, every problem with its line).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Iterable


from mrod.infra.dbapi import Connection
from mrod.entities import domains, users
from mrod.entities.audit import Actor
from mrod.entities.domains import Domain
from mrod.infra import db, durations, names
from mrod.infra.errors import Conflict, InvalidInput, NothingImported, NotFound

COLUMNS = ("name", "relay", "host", "port", "protocol", "tls", "mx", "enabled", "include_subdomains",
           "recipients", "paused", "pause_reason", "quota_messages", "quota_bytes", "verify_when_down",
           "when_primary_up", "owner", "source", "queue_lifetime")
MAX_ROWS = 100_000
MAX_PROBLEMS = 100
_YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"): an
# exported pause reason such as '=HYPERLINK(...)' is written with a leading ' and read back without.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def export(rows: Iterable[Domain], owners: dict[int, str]) -> str:
    """The domains as CSV text, a header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for d in rows:
        writer.writerow(_cell(v) for v in [
            d.name, d.relay_name or "", d.host or "", d.port if d.host else "", d.protocol if d.host else "",
            d.tls or "" if d.relay_id is None else "", _yes(d.route_kind == "mx"), _yes(d.enabled),
            _yes(d.include_subdomains), d.recipients, _yes(d.paused), d.pause_reason or "",
            "" if d.quota_messages is None else d.quota_messages, "" if d.quota_bytes is None else d.quota_bytes,
            d.verify_when_down, d.when_primary_up, owners.get(d.owner_id, "") if d.owner_id is not None else "",
            d.source, "" if d.queue_lifetime is None else durations.duration_text(d.queue_lifetime)])
    return out.getvalue()


@dataclass
class Report:
    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)    # (domain, fields changed)
    # domain: [(field, before, after)] for each changed field (what a preview shows in words)
    changes: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)
    unchanged: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)         # (line, message)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "changed": [{"domain": d, "fields": f} for d, f in self.changed],
                "unchanged": self.unchanged, "problems": [{"line": n, "why": w} for n, w in self.problems]}


class CsvRefused(NothingImported):
    def __init__(self, report: Report) -> None:
        line, why = report.problems[0]
        super().__init__(line, why, len(report.problems))
        self.report = report


class _Preview(Exception):
    """Raised inside the transaction to roll a preview back."""


def _rows(text: str) -> Iterable[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InvalidInput("csv", "is empty: the first row names the columns (name, relay, ...)")
    header = [h.strip().lower() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InvalidInput("csv", f"unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    if "name" not in header or len(set(header)) != len(header):
        raise InvalidInput("csv", "the header must name the column 'name', and each column once")
    for number, row in enumerate(reader, 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvalidInput("csv", f"line {number}: {len(row)} values for {len(header)} columns")
        yield number, {k: _uncell(v.strip()) for k, v in zip(header, row, strict=True)}


def _flag(row: dict[str, str], key: str) -> bool | None:
    value = row.get(key, "")
    if value == "":
        return None
    if value.lower() not in _YES:
        raise InvalidInput(key, f"{value!r} is not yes or no")
    return _YES[value.lower()]


async def _spec(conn: Connection, row: dict[str, str], current: Domain | None,
                owner_ids: dict[str, int], may_set_owner: bool) -> dict[str, Any]:
    """What domains.add / update takes: for an existing domain, only what differs."""
    spec: dict[str, Any] = {}
    if row.get("relay"):
        if current is None or (current.relay_name or "").lower() != row["relay"].lower():
            spec["relay"] = row["relay"]
    elif row.get("host"):
        wanted = {"host": row["host"], "port": row.get("port") or "25", "protocol": row.get("protocol") or "smtp",
                  "tls": row.get("tls") or "may"}
        if current is None or current.route_kind != "host" or [str(current.host), str(current.port),
                                                                str(current.protocol), str(current.tls)] != \
                [names.hostname(wanted["host"]), wanted["port"], wanted["protocol"].lower(), wanted["tls"].lower()]:
            spec.update(wanted)
    elif _flag(row, "mx"):
        tls = row.get("tls") or "may"
        if current is None or current.route_kind != "mx" or (current.tls or "may") != tls.lower():
            spec.update(mx=True, tls=tls)
    elif current is None:
        raise InvalidInput("route", "give a relay, a host, or mx=yes")
    for key in ("enabled", "include_subdomains", "paused"):
        flag = _flag(row, key)
        if flag is not None and (current is None or getattr(current, key) != flag):
            spec[key] = flag
    for key in ("recipients", "verify_when_down", "when_primary_up", "source"):
        word = row.get(key, "")
        if word and (current is None or getattr(current, key) != word.lower()):
            spec[key] = word
    for key in ("pause_reason", "quota_messages", "quota_bytes"):
        if key in row:
            stored = getattr(current, key) if current is not None else None
            if current is None or ("" if stored is None else str(stored)) != row[key]:
                spec[key] = row[key] or None
    if "queue_lifetime" in row:
        wanted_lifetime = domains.queue_lifetime(row["queue_lifetime"])
        if current is None or current.queue_lifetime != wanted_lifetime:
            spec["queue_lifetime"] = wanted_lifetime
    if "owner" in row and may_set_owner:
        owner = row["owner"]
        if owner and owner.lower() not in owner_ids:
            raise InvalidInput("owner", f"no user {owner!r}")
        owner_id = owner_ids[owner.lower()] if owner else None
        if current is None or current.owner_id != owner_id:
            spec["owner_id"] = owner_id
    return spec


async def run(conn: Connection, actor: Actor, text: str, *, apply: bool, owner_id: int | None = None,
              source: str = "manual", may_set_quota: bool = True) -> Report:
    """Import (apply=True) or preview CSV text. ``owner_id``: a domains_own user — only their own
    domains may be changed, and what they add is theirs (the owner column is ignored).
    ``may_set_quota`` False: a row that would set a queue quota is refused (quotas guard the
    disk every domain shares; see admin/access.py)."""
    report = Report()
    try:
        async with db.transaction(conn):
            owner_ids = {u.name.lower(): u.id for u in await users.list_all(conn)}
            rows = list(_rows(text))
            if len(rows) > MAX_ROWS:
                raise InvalidInput("csv", f"at most {MAX_ROWS} rows at a time")
            seen: dict[str, int] = {}
            for number, row in rows:
                try:
                    await _one(conn, actor, row, report, owner_ids, owner_id, source, seen, number,
                               may_set_quota)
                except (InvalidInput, NotFound, Conflict) as exc:
                    message = exc.message if isinstance(exc, InvalidInput) else str(exc)
                    where = f"{row.get('name', '')}: " if row.get("name") else ""
                    field_ = f"{exc.field}: " if isinstance(exc, InvalidInput) and exc.field not in ("domain",) else ""
                    report.problems.append((number, f"{where}{field_}{message}"))
                    if len(report.problems) >= MAX_PROBLEMS:
                        break
            if report.problems:
                raise CsvRefused(report)
            if not apply:
                raise _Preview()
    except _Preview:
        pass
    return report


async def _one(conn: Connection, actor: Actor, row: dict[str, str], report: Report,
               owner_ids: dict[str, int], owner_id: int | None, source: str, seen: dict[str, int],
               number: int, may_set_quota: bool) -> None:
    name = names.domain(row["name"])
    if name in seen:
        raise Conflict(f"{name} is listed twice (line {seen[name]})")
    seen[name] = number
    try:
        current: Domain | None = await domains.get(conn, name)
    except NotFound:
        current = None
    if current is not None and owner_id is not None and current.owner_id != owner_id:
        raise NotFound(f"domain {name!r}: you may change only your own domains")
    spec = await _spec(conn, row, current, owner_ids, may_set_owner=owner_id is None)
    for key in ("quota_messages", "quota_bytes"):
        if not may_set_quota and key in spec and (current is not None or spec[key] is not None):
            raise InvalidInput(key, "setting a queue quota needs the permission domains")
    if current is None:
        spec.setdefault("source", source)
        if owner_id is not None:
            spec["owner_id"] = owner_id
        await domains.add(conn, actor, name, **spec)
        report.added.append(name)
    elif spec:
        after = await domains.update(conn, actor, name, **spec)
        fields = [k for k in Domain.__dataclass_fields__ if getattr(after, k) != getattr(current, k)
                  and k not in ("updated_at",)]
        if fields:
            report.changed.append((name, fields))
            report.changes[name] = [(k, getattr(current, k), getattr(after, k)) for k in fields]
        else:
            report.unchanged += 1
    else:
        report.unchanged += 1
