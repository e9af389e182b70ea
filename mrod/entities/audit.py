"""The audit trail: every change, who made it, from where, what before and after.

Rows are written inside the same transaction as the change they describe, so a change and
its audit row commit (or vanish) together.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping


from mrod.infra.dbapi import Connection, Row
from mrod.infra import db


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a user name (or process), through which door, from which address."""

    name: str
    origin: str
    remote: str | None = None
    user_id: int | None = None

    @classmethod
    def cli(cls) -> "Actor":
        # Under sudo, name the person rather than root.
        user = os.environ.get("SUDO_USER") or _login_name()
        return cls(name=user, origin="cli", remote="local")

    @classmethod
    def system(cls, what: str) -> "Actor":
        return cls(name=what, origin="system", remote="local")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    origin: str
    remote: str | None
    action: str
    entity: str
    entity_key: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def record(
    conn: Connection,
    actor: Actor,
    action: str,
    entity: str,
    key: str | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit (at, actor, origin, remote, action, entity, entity_key, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (db.now(), actor.name, actor.origin, actor.remote, action, entity, key, _json(before), _json(after)),
    )


async def record_many(
    conn: Connection, actor: Actor, action: str, entity: str, rows: list[tuple[str, Mapping[str, Any] | None]]
) -> None:
    """One audit row per (key, after) — for bulk imports."""
    at = db.now()
    await conn.executemany(
        "INSERT INTO audit (at, actor, origin, remote, action, entity, entity_key, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        ((at, actor.name, actor.origin, actor.remote, action, entity, key, _json(after)) for key, after in rows),
    )


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True, default=str)


async def entries(
    conn: Connection,
    *,
    entity: str | None = None,
    key: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    where, args = _filters(entity=entity, key=key, actor=actor, action=action, since=since, until=until, search=search)
    sql = f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ? OFFSET ?"
    async with conn.execute(sql, (*args, limit, offset)) as cur:
        rows = await cur.fetchall()
    return [_entry(r) for r in rows]


async def count(conn: Connection, **filters: str | None) -> int:
    where, args = _filters(**filters)
    async with conn.execute(f"SELECT count(*) FROM audit {where}", args) as cur:
        row = await db.one_row(cur)
    return int(row[0])


def _filters(**filters: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column in ("entity", "actor", "action"):
        if filters.get(column):
            clauses.append(f"{column} = ?")
            args.append(filters[column])
    if filters.get("key"):
        clauses.append("entity_key = ?")
        args.append(filters["key"])
    if filters.get("since"):
        clauses.append("at >= ?")
        args.append(filters["since"])
    if filters.get("until"):
        clauses.append("at <= ?")
        args.append(filters["until"])
    if filters.get("search"):
        # lower(): SQLite's LIKE ignores ASCII case, PostgreSQL's does not
        clauses.append("(lower(entity_key) LIKE ? ESCAPE '\\' OR lower(before) LIKE ? ESCAPE '\\'"
                       " OR lower(after) LIKE ? ESCAPE '\\')")
        pattern = "%" + like_escape((filters["search"] or "").lower()) + "%"
        args.extend([pattern] * 3)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        origin=row["origin"],
        remote=row["remote"],
        action=row["action"],
        entity=row["entity"],
        entity_key=row["entity_key"],
        before=json.loads(row["before"]) if row["before"] else None,
        after=json.loads(row["after"]) if row["after"] else None,
    )
