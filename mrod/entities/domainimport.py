"""The line import of domains (`mrod domain import`, the panel's and the API's bulk add):
``domain [relay]`` lines, checked line by line, the good ones written by mrod.entities.domains
.insert — the same INSERT and audit as `mrod domain add` — in one transaction."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable


from mrod.infra.dbapi import Connection
from mrod.entities import domains, relays
from mrod.entities.audit import Actor
from mrod.infra import db, enums, names
from mrod.infra.errors import InvalidInput, NothingImported


@dataclass
class ImportReport:
    added: list[str] = dataclasses.field(default_factory=list)
    # (line, text, why) — `why` is a full sentence that names the domain
    skipped: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    refused: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)


class ImportRefused(NothingImported):
    def __init__(self, report: ImportReport) -> None:
        line, _, why = report.refused[0]
        super().__init__(line, why, len(report.refused))
        self.report = report


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[int, str, str | None]]:
    """(line number, domain text, relay name or None); blank lines and # comments skipped."""
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        yield number, " ".join(parts) if len(parts) > 2 else parts[0], parts[1] if len(parts) == 2 else None


async def bulk_add(
    conn: Connection,
    actor: Actor,
    lines: Iterable[str],
    *,
    relay: str | None = None,
    mx: bool = False,
    skip_existing: bool = False,
    strict: bool = True,
    source: str = "manual",
    owner_id: int | None = None,
    include_subdomains: bool = False,
    recipients: str = "accept_all",
    enabled: bool = True,
) -> ImportReport:
    """Add many domains in one transaction.

    Each line: ``domain [relay]``. strict: any refused line refuses the whole batch
    (ImportRefused, nothing written); otherwise good lines are added and the rest reported.
    Domains that exist already are refused, or skipped with ``skip_existing``.
    """
    report = ImportReport()
    flags = {"enabled": int(enabled), "include_subdomains": int(include_subdomains), "owner_id": owner_id,
             "recipients": names.choice(recipients, enums.RECIPIENT_POLICIES, "recipients"),
             "source": names.choice(source, enums.SOURCES, "source")}
    async with db.transaction(conn):
        relay_ids = {r.name.lower(): r.id for r in await relays.list_all(conn)}
        default_relay_id = (await relays.get(conn, relay)).id if relay else None
        wanted = _check_lines(lines, relay_ids, default_relay_id, mx, report)
        for name in await domains.existing_names(conn, list(wanted)):
            number = wanted.pop(name)[0]
            (report.skipped if skip_existing else report.refused).append((number, name, f"{name} exists already"))
        report.refused.sort()
        if strict and report.refused:
            raise ImportRefused(report)
        columns: dict[int | None, dict[str, Any]] = {}     # one (read-only) dict per relay, not per line
        rows = [(name, columns.get(relay_id) or columns.setdefault(relay_id, _columns(relay_id, flags)))
                for name, (_, relay_id) in wanted.items()]
        await domains.insert(conn, actor, rows, returning=False)
        report.added = list(wanted)
    return report


def _columns(relay_id: int | None, flags: dict[str, Any]) -> dict[str, Any]:
    """add()'s columns for a line: by its relay, or (none, with mx) by the domain's own MX."""
    return {"relay_id": relay_id, "host": None, "port": None, "protocol": None, "tls": None if relay_id else "may",
            **flags, "route": "relay" if relay_id else "dns-dom"}


def _check_lines(lines: Iterable[str], relay_ids: dict[str, int], default_relay_id: int | None, mx: bool,
                 report: ImportReport) -> dict[str, tuple[int, int | None]]:
    """{domain: (line, relay id or None)} for the good lines; the rest go into the report."""
    wanted: dict[str, tuple[int, int | None]] = {}
    for number, text, relay_name in parse_lines(lines):
        if " " in text:
            report.refused.append((number, text, f"{text!r}: expected 'domain [relay]'"))
            continue
        try:
            name = names.domain(text)
        except InvalidInput as exc:
            report.refused.append((number, text, exc.message))
            continue
        if relay_name is not None:
            relay_id = relay_ids.get(relay_name.lower())
            if relay_id is None:
                report.refused.append((number, text, f"{name}: relay {relay_name!r} does not exist"))
                continue
        elif default_relay_id is not None or mx:
            relay_id = default_relay_id
        else:
            report.refused.append((number, text, f"{name}: no relay (give one after the domain, or a default relay)"))
            continue
        if name in wanted:
            first_line, first_relay = wanted[name]
            if first_relay != relay_id:
                report.refused.append((number, text, f"{name}: listed again with another relay (line {first_line})"))
            else:
                report.skipped.append((number, name, f"{name}: duplicate of line {first_line}"))
            continue
        wanted[name] = (number, relay_id)
    return wanted
