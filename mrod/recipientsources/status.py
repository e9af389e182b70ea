"""What the CLI (`list --json`), the API, the panel and the metrics show of each source."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.recipientsources import sources


def state(source: sources.Source) -> str:
    """'held' (a result waits for an operator), 'failing', 'ok', or 'never synced'."""
    if source.pending:
        return "held"
    if source.error is not None:
        return "failing"
    return "ok" if source.ok_at else "never synced"


def age_seconds(stamp: str | None, now: datetime | None = None) -> int | None:
    if not stamp:
        return None
    return int(((now or datetime.now(timezone.utc)) - db.parse_stamp(stamp)).total_seconds())


def age_text(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def describe(conn: Connection, source: sources.Source) -> dict[str, Any]:
    out = source.as_dict()
    age = age_seconds(source.ok_at)
    out.update(domains=[d.name for d in await sources.fed_domains(conn, source.id)], state=state(source),
               age_seconds=age, age=age_text(age))
    return out


async def describe_all(conn: Connection) -> list[dict[str, Any]]:
    return [await describe(conn, s) for s in await sources.list_all(conn)]
