"""Recipients accepted for domains whose recipient policy is ``listed``.

Stored casefolded as ``local@domain`` or ``@domain`` (every address of that domain). An address
belongs to the domain that matches it: its own domain, or a parent domain that includes
subdomains.
"""

from __future__ import annotations

from dataclasses import dataclass


from mrod.infra.dbapi import Connection
from mrod.entities import audit, domains
from mrod.infra import db, journal, names
from mrod.entities.audit import Actor
from mrod.infra.errors import Conflict, NotFound, UniqueViolation


@dataclass(frozen=True)
class Recipient:
    id: int
    domain: str
    address: str
    created_at: str


async def owning_domain(conn: Connection, address: str) -> domains.Domain:
    """The domain an (already normalised) address belongs to."""
    dom = address.rpartition("@")[2]
    candidates = [dom, *names.parent_domains(dom)]
    async with conn.execute(
        f"SELECT name, include_subdomains FROM domain WHERE name IN ({', '.join('?' * len(candidates))})",
        candidates,
    ) as cur:
        rows = {r[0]: bool(r[1]) for r in await cur.fetchall()}
    owner = names.deciding_domain(dom, rows, bool)
    if owner is not None:
        return await domains.get(conn, owner)
    raise NotFound(f"no domain here accepts mail for {dom!r}; add the domain first")


async def add(conn: Connection, actor: Actor, address: str) -> Recipient:
    key = names.address(address)
    async with db.transaction(conn):
        domain = await owning_domain(conn, key)
        stamp = db.now()
        try:
            cur = await conn.execute(
                "INSERT INTO recipient (domain_id, address, created_at) VALUES (?, ?, ?) RETURNING id",
                (domain.id, key, stamp))
            recipient_id = await db.returned_id(cur)
        except UniqueViolation:
            raise Conflict(f"recipient {key!r} is listed already") from None
        await journal.domain_changed(conn, domain.name)
        await audit.record(conn, actor, "add", "recipient", key, None, {"domain": domain.name, "address": key})
    return Recipient(recipient_id, domain.name, key, stamp)


async def remove(conn: Connection, actor: Actor, address: str) -> None:
    key = names.address(address)
    async with db.transaction(conn):
        async with conn.execute(
            "SELECT r.id, d.name FROM recipient r JOIN domain d ON d.id = r.domain_id WHERE r.address = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"recipient {key!r} is not listed")
        await conn.execute("DELETE FROM recipient WHERE id = ?", (row[0],))
        await journal.domain_changed(conn, row[1])
        await audit.record(conn, actor, "remove", "recipient", key, {"domain": row[1], "address": key}, None)


async def list_for(conn: Connection, domain_name: str) -> list[Recipient]:
    domain = await domains.get(conn, domain_name)
    async with conn.execute(
        "SELECT id, address, created_at FROM recipient WHERE domain_id = ? ORDER BY address", (domain.id,)
    ) as cur:
        return [Recipient(r[0], domain.name, r[1], r[2]) for r in await cur.fetchall()]



async def synced(conn: Connection, source_id: int, domain_id: int) -> set[str]:
    """The recipients a source's syncs listed for a domain."""
    async with conn.execute(
        "SELECT address FROM recipient WHERE source_id = ? AND domain_id = ?", (source_id, domain_id)
    ) as cur:
        return {r[0] for r in await cur.fetchall()}


async def replace_synced(conn: Connection, actor: Actor, source_id: int, domain_id: int, domain_name: str,
                         wanted: set[str]) -> tuple[int, int]:
    """Make a source's rows of a domain exactly ``wanted`` (normalised keys); hand-added rows
    stay, and an address listed already (by hand, by another source) is not listed twice.
    Journaled, so lookupd answers the new list at its next lookup. Returns (added, removed)."""
    async with db.transaction(conn):
        current = await synced(conn, source_id, domain_id)
        gone, new = sorted(current - wanted), sorted(wanted - current)
        if gone:
            await conn.executemany("DELETE FROM recipient WHERE source_id = ? AND address = ?",
                                   [(source_id, a) for a in gone])
        if new:
            stamp = db.now()
            await conn.executemany(
                "INSERT INTO recipient (domain_id, address, created_at, source_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (address) DO NOTHING", [(domain_id, a, stamp, source_id) for a in new])
        if gone or new:
            await journal.domain_changed(conn, domain_name)
            await audit.record(conn, actor, "sync", "recipient", domain_name, {"synced": len(current)},
                               {"synced": len(wanted), "added": len(new), "removed": len(gone)})
    return len(new), len(gone)
