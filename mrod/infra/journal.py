"""The change journal (migration 0005): what changed in the data lookupd answers from memory.

Writers: triggers record updates and deletions of domains and every relay change; mrod's own
write paths record added domains with ``domains_added`` and a domain's listed recipients
added or removed with ``domain_changed`` (one call, inside their transaction):
up to ``BULK`` names one row each, more as one 'all' row, so a bulk import costs one row, not
one trigger run per domain.

Readers (lookupd's snapshot): ``position`` then ``since(position)`` in seq order. The journal
is pruned from the old end; a reader that finds a gap after its position reloads everything.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


from mrod.infra.dbapi import SyncConnection, Connection
from mrod.infra.enums import CHANGE_ENTITIES

DOMAIN, RELAY, ALL = CHANGE_ENTITIES
BULK = 1000   # more added names than this: one 'all' row (the reader reloads everything)


class Change(NamedTuple):
    seq: int
    entity: str       # DOMAIN, RELAY or ALL
    key: str | None   # a domain name, a relay id as text, None for ALL


async def domains_added(conn: Connection, names: Iterable[str]) -> None:
    """Record added domains; call inside the transaction that inserted them."""
    listed = list(names)
    if not listed:
        return
    if len(listed) > BULK:
        await conn.execute("INSERT INTO change (entity) VALUES ('all')")
    else:
        await conn.executemany("INSERT INTO change (entity, key) VALUES ('domain', ?)", [(n,) for n in listed])


async def domain_changed(conn: Connection, name: str) -> None:
    """Record a change to a domain no trigger sees (its listed recipients); call inside the
    transaction that made it. Readers re-read the domain (and, on PostgreSQL, its recipients)."""
    await conn.execute("INSERT INTO change (entity, key) VALUES ('domain', ?)", (name,))


def position(conn: SyncConnection) -> int:
    """The newest seq (0 for an empty journal)."""
    row = conn.execute("SELECT max(seq) FROM change").fetchone()
    return int(row[0] or 0)


def since(conn: SyncConnection, seq: int, limit: int) -> list[Change] | None:
    """The changes after ``seq`` in order, or None when the reader must reload everything:
    an 'all' row, more than ``limit`` rows, a gap (rows pruned past the reader's position), or
    a journal that ends before it (an older copy of the database restored into the file)."""
    rows = conn.execute(
        "SELECT seq, entity, key FROM change WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit + 1)).fetchall()
    if not rows:
        # Behind the reader's position: the file was restored from an older copy in place.
        return None if position(conn) < seq else []
    if len(rows) > limit or rows[0][0] != seq + 1:
        return None
    changes = [Change(*row) for row in rows]
    if any(c.entity == ALL for c in changes):
        return None
    return changes
