"""Domains whose queued mail is kept on hold: by hand (``mrod domain hold D``, the panel, the
API) or by the circuit breaker of the careful flush (reason ``breaker``: its tripped state).

A row here is shared by every node; each node's queue job holds the domain's mail in its own
Postfix queue and remembers the messages it held (``held_message``), so a release gives back
exactly those — never mail an operator put on hold with postsuper by hand. The queue side is
mrod.operations.holdqueue; this module owns the two tables' writes and their audit rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from mrod.entities import audit, domains
from mrod.entities.audit import Actor
from mrod.infra import db, enums
from mrod.infra.dbapi import Connection
from mrod.infra.errors import InvalidInput

REASONS = enums.HOLD_REASONS


@dataclass(frozen=True)
class Hold:
    domain_id: int
    domain: str
    reason: str
    held_at: str
    held_by: str
    node: str
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "reason": self.reason, "held_at": self.held_at, "held_by": self.held_by,
                "node": self.node, "detail": self.detail}


_SELECT = ("SELECT h.domain_id, d.name, h.reason, h.held_at, h.held_by, h.node, h.detail"
           " FROM domain_hold h JOIN domain d ON d.id = h.domain_id")


async def all_holds(conn: Connection) -> list[Hold]:
    async with conn.execute(_SELECT + " ORDER BY d.name") as cur:
        return [Hold(*row) for row in await cur.fetchall()]


async def of_domain(conn: Connection, domain_id: int) -> Hold | None:
    async with conn.execute(_SELECT + " WHERE h.domain_id = ?", (domain_id,)) as cur:
        row = await cur.fetchone()
    return Hold(*row) if row else None


async def hold(conn: Connection, actor: Actor, name: str, *, reason: str = enums.HoldReason.MANUAL, node: str = "",
               detail: str | None = None) -> Hold:
    """Hold a domain (a second hold keeps the first, whoever asked). Raises NotFound."""
    if reason not in REASONS:
        raise InvalidInput("reason", f"must be one of {', '.join(REASONS)}")
    domain = await domains.get(conn, name)
    async with db.transaction(conn):
        current = await of_domain(conn, domain.id)
        if current is not None:
            return current
        await conn.execute("INSERT INTO domain_hold (domain_id, reason, held_at, held_by, node, detail)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (domain.id, reason, db.now(), actor.name, node, (detail or "")[:1000] or None))
        await audit.record(conn, actor, "hold", "domain", domain.name, None,
                           {"reason": reason, "node": node, "detail": detail})
    found = await of_domain(conn, domain.id)
    assert found is not None
    return found


async def release(conn: Connection, actor: Actor, name: str) -> Hold | None:
    """Lift a domain's hold (None: it was not held). Its mail is given back by each node's
    queue job (this node's at once when the caller runs holdqueue.apply). Raises NotFound."""
    domain = await domains.get(conn, name)
    async with db.transaction(conn):
        current = await of_domain(conn, domain.id)
        if current is None:
            return None
        await conn.execute("DELETE FROM domain_hold WHERE domain_id = ?", (domain.id,))
        await audit.record(conn, actor, "release", "domain", domain.name, current.as_dict(), None)
    return current


# -- the messages a node held -----------------------------------------------------------------------


async def remember(conn: Connection, node: str, held: list[tuple[str, int]]) -> None:
    """Messages (queue id, domain id) this node put on hold."""
    now = db.now()
    async with db.transaction(conn):
        await conn.executemany(
            "INSERT INTO held_message (node, queue_id, domain_id, held_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (node, queue_id) DO NOTHING", [(node, q, d, now) for q, d in held])


async def held_ids(conn: Connection, node: str) -> dict[str, int]:
    """Queue id -> domain id of every message this node holds for mrod."""
    async with conn.execute("SELECT queue_id, domain_id FROM held_message WHERE node = ?", (node,)) as cur:
        return {row[0]: row[1] for row in await cur.fetchall()}


async def forget(conn: Connection, node: str, queue_ids: list[str]) -> None:
    async with db.transaction(conn):
        await conn.executemany("DELETE FROM held_message WHERE node = ? AND queue_id = ?",
                               [(node, q) for q in queue_ids])
