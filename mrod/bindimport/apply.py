"""Reading the planner's view of the database, and carrying out a plan through
mrod.entities.domains (the same validation and audit as the CLI's), inside the caller's
transaction."""

from __future__ import annotations

import json


from mrod.infra.dbapi import Connection
from mrod.entities import domains
from mrod.entities.audit import Actor
from mrod.bindimport.planner import Current, Plan, RelayRef


async def current_state(conn: Connection) -> dict[str, Current]:
    """Every domain, as the planner sees it (manual ones too: they must be left alone)."""
    async with conn.execute(
        "SELECT name, source, enabled, route, relay_id, host, port, manual_fields, missing_since,"
        " disabled_by_import FROM domain"
    ) as cur:
        rows = await cur.fetchall()
    return {
        r[0]: Current(
            name=r[0], source=r[1], enabled=bool(r[2]), route=r[3], relay_id=r[4], host=r[5], port=r[6],
            manual=frozenset(json.loads(r[7])) if r[7] else frozenset(),
            missing_since=r[8], disabled_by_import=bool(r[9]),
        )
        for r in rows
    }


async def relay_refs(conn: Connection) -> list[RelayRef]:
    async with conn.execute("SELECT id, name FROM relay") as cur:
        return [RelayRef(r[0], r[1]) for r in await cur.fetchall()]


async def apply(conn: Connection, plan: Plan, actor: Actor, stamp: str) -> None:
    """Carry out every action. Any error propagates: the caller's transaction rolls back."""
    adds = [(a.name, a.spec) for a in plan.actions if a.kind == "add"]
    if adds:
        await domains.add_many(conn, actor, adds)
    for action in plan.actions:
        if action.kind == "add":
            continue
        if action.kind == "delete":
            await domains.remove(conn, actor, action.name)
            continue
        mark = None
        if action.mark_missing:        # the zone is gone: note since when, and if this run disabled it
            mark = domains.ImportMark(stamp, True if action.spec.get("enabled") is False else None)
        elif action.clear_missing:     # back in BIND
            mark = domains.ImportMark(None, False)
        await domains.update(conn, actor, action.name, import_mark=mark, **action.spec)
