"""Outage history: every outage of a primary as each node saw it, with the mail it left
waiting and how long the flush took, and availability over a window.

An outage is written by the health monitor (mrod.operations.health): opened at a relay's
transition to ``down`` (so after [health] down_after failed probes: its start is when the
monitor judged it down, not the first lost probe), closed at its transition back to ``up``
(after up_after good probes). The queue job (mrod.operations.queuestats.refresh) adds, from
every reading of this node's queue: while an outage is open, the most messages its relay's
domains had waiting (``queued_max``); once closed, the first reading in which none of them had
mail left (``flushed_at``: the flush took ``flushed_at - ended_at``, within one [queue] interval).

Only relays are watched this way; routes by a domain's own host or MX records are probed by
the next-hop monitor in memory only (mrod.operations.nexthops) and have no history.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mrod.infra import db
from mrod.infra.dbapi import Connection

# A closed outage whose mail is still queued this long after is no longer watched for its flush.
FLUSH_WATCH = timedelta(days=7)


async def started(conn: Connection, node: str, relay_id: int, at: str) -> None:
    """Open an outage (inside the health round's transaction); one open per relay and node."""
    async with conn.execute("SELECT 1 FROM relay_outage WHERE node = ? AND relay_id = ? AND ended_at IS NULL",
                            (node, relay_id)) as cur:
        if await cur.fetchone():
            return
    await conn.execute("INSERT INTO relay_outage (node, relay_id, started_at) VALUES (?, ?, ?)",
                       (node, relay_id, at))


async def ended(conn: Connection, node: str, relay_id: int, at: str) -> None:
    await conn.execute("UPDATE relay_outage SET ended_at = ? WHERE node = ? AND relay_id = ? AND ended_at IS NULL",
                       (at, node, relay_id))


async def note_queue(conn: Connection, node: str, messages: dict[int, int], read_at: str) -> None:
    """A queue reading of this node (domain id -> messages waiting): the open outages' most
    queued, the closed ones' flush end."""
    watch = db.stamp(datetime.now(timezone.utc) - FLUSH_WATCH)
    async with conn.execute(
            "SELECT o.id, o.relay_id, o.ended_at FROM relay_outage o WHERE o.node = ?"
            " AND (o.ended_at IS NULL OR (o.flushed_at IS NULL AND o.ended_at >= ?))", (node, watch)) as cur:
        rows = list(await cur.fetchall())
    if not rows:
        return
    relays = {r[1] for r in rows}
    marks = ", ".join("?" * len(relays))
    async with conn.execute(f"SELECT id, relay_id FROM domain WHERE relay_id IN ({marks})", tuple(relays)) as cur:
        waiting: dict[int, int] = {}
        for domain_id, relay_id in await cur.fetchall():
            waiting[relay_id] = waiting.get(relay_id, 0) + messages.get(domain_id, 0)
    async with db.transaction(conn):
        for outage_id, relay_id, ended_at in rows:
            count = waiting.get(relay_id, 0)
            if ended_at is None:
                await conn.execute("UPDATE relay_outage SET queued_max = ? WHERE id = ? AND queued_max < ?",
                                   (count, outage_id, count))
            elif count == 0:
                await conn.execute("UPDATE relay_outage SET flushed_at = ? WHERE id = ?",
                                   (max(read_at, ended_at), outage_id))


def _seconds(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    return (db.parse_stamp(end) - db.parse_stamp(start)).total_seconds()


async def history(conn: Connection, *, relay_id: int | None = None, node: str | None = None, limit: int = 100
                  ) -> list[dict[str, Any]]:
    """Outages, newest first: one relay's (or all), one node's (or every node's)."""
    where, args = db.where_equal(("o.relay_id", relay_id), ("o.node", node))
    async with conn.execute(
            "SELECT o.id, r.name, o.node, o.started_at, o.ended_at, o.queued_max, o.flushed_at FROM relay_outage o"
            f" JOIN relay r ON r.id = o.relay_id{where} ORDER BY o.started_at DESC, o.id DESC LIMIT ?",
            (*args, limit)) as cur:
        rows = await cur.fetchall()
    return [{"id": r[0], "relay": r[1], "node": r[2], "started_at": r[3], "ended_at": r[4],
             "duration_s": _seconds(r[3], r[4] or db.now()), "ongoing": r[4] is None, "queued": r[5],
             "flushed_at": r[6], "flush_s": _seconds(r[4], r[6])} for r in rows]


async def availability(conn: Connection, relay_id: int, node: str, days: int) -> float:
    """The share of the last ``days`` days the relay was not in an outage, as ``node`` saw it."""
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    async with conn.execute(
            "SELECT started_at, ended_at FROM relay_outage WHERE relay_id = ? AND node = ?"
            " AND (ended_at IS NULL OR ended_at > ?)", (relay_id, node, db.stamp(since))) as cur:
        rows = await cur.fetchall()
    down = 0.0
    for start, end in rows:
        begin = max(db.parse_stamp(start), since)
        finish = db.parse_stamp(end) if end else now
        down += max(0.0, (finish - begin).total_seconds())
    return max(0.0, 1.0 - down / (days * 86400.0))


async def summary(conn: Connection, relay_id: int, node: str, limit: int = 20) -> dict[str, Any]:
    """What the relay and domain pages, the API and the CLI show for one relay and node."""
    return {"availability_7d": await availability(conn, relay_id, node, 7),
            "availability_30d": await availability(conn, relay_id, node, 30),
            "outages": await history(conn, relay_id=relay_id, node=node, limit=limit)}
