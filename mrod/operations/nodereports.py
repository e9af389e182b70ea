"""Every node's lookupd sync status in the shared database (table
``node_status``, migration 0009), for the panel's Nodes table and ``mrod health --all-nodes``.

Each node's ``mrod serve`` (PostgreSQL only) copies its own lookupd's status file
(mrod.operations.syncstatus) into its row every ``REPORT_EVERY`` seconds. A node cut off from
PostgreSQL cannot report: its row keeps its last sync and ages, so the nodes that still reach
the database see it go stale. ``view`` puts the rows together for display, this node's from its
file (live, right even between two reports, and while the database is gone).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


from mrod.infra.dbapi import Connection
from mrod.entities import audit
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import InvalidInput, NotFound
from mrod.operations import syncstatus
from mrod.operations.syncstatus import STALE_AFTER, SyncStatus

REPORT_EVERY = 10.0   # seconds between two reports of a node (well below STALE_AFTER)


async def upsert(conn: Connection, node: str, synced_at: float | None, connected: bool,
                 reported_at: float | None = None, public_addresses: tuple[str, ...] = ()) -> None:
    """Store ``node``'s status (times as epoch seconds; reported_at: now) and its [node]
    public_addresses (the trust kit's source: mrod.operations.trustkit; none: NULL)."""
    async with db.transaction(conn):
        await conn.execute(
            "INSERT INTO node_status (node, lookupd_synced_at, lookupd_connected, reported_at, public_addresses)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (node) DO UPDATE SET lookupd_synced_at = excluded.lookupd_synced_at,"
            " lookupd_connected = excluded.lookupd_connected, reported_at = excluded.reported_at,"
            " public_addresses = excluded.public_addresses",
            (node, _stamp(synced_at), int(connected), _stamp(time.time() if reported_at is None else reported_at),
             " ".join(public_addresses) or None))


async def public_addresses(conn: Connection) -> dict[str, tuple[str, ...]]:
    """Every reporting node's public addresses, by node name (empty: the node reported none)."""
    async with conn.execute("SELECT node, public_addresses FROM node_status ORDER BY node") as cur:
        return {r[0]: tuple((r[1] or "").split()) for r in await cur.fetchall()}


async def rows(conn: Connection) -> list[dict[str, Any]]:
    """Every node's stored status, by node name."""
    async with conn.execute("SELECT node, lookupd_synced_at, lookupd_connected, reported_at FROM node_status"
                            " ORDER BY node") as cur:
        return [{"node": r[0], "synced_at": _epoch(r[1]), "connected": bool(r[2]), "reported_at": _epoch(r[3])}
                for r in await cur.fetchall()]


# Everything stored under a node's name (migrations 0007, 0009, 0010, 0013, 0014).
NODE_TABLES = ("node_status", "queue_stat", "queue_reading", "relay_health", "health_probe", "domain_check",
               "flush_request", "host_check", "notify_state")


async def forget(conn: Connection, actor: Actor, node: str, here: str) -> dict[str, int]:
    """Remove a node taken out of service: its status and every reading stored under its name
    (rows removed, by table). NotFound when nothing is stored under that name; refused for this
    node (it would report again at once)."""
    if node == here:
        raise InvalidInput("node", f"{node!r} is this node ([node] name): forget it from another node, "
                           "once it is out of service")
    removed: dict[str, int] = {}
    async with db.transaction(conn):
        for table in NODE_TABLES:
            cur = await conn.execute(f"DELETE FROM {table} WHERE node = ?", (node,))
            if cur.rowcount:
                removed[table] = cur.rowcount
        if not removed:
            raise NotFound(f"nothing is stored for node {node!r}")
        await audit.record(conn, actor, "remove", "node", node, removed, None)
    return removed


async def report(cfg: Config) -> SyncStatus | None:
    """The node status job: this node's lookupd status file into its row (None on SQLite)."""
    status = await asyncio.to_thread(syncstatus.read_for, cfg)
    if status is None:
        return None
    async with db.opened(cfg.database) as conn:
        # A lookupd that stopped or hung says nothing about the database now: not connected.
        await upsert(conn, cfg.node.name, status.synced_at, status.connected and status.alive,
                     public_addresses=cfg.node.public_addresses)
    return status


@dataclass(frozen=True)
class NodeView:
    node: str
    synced_at: float | None
    connected: bool
    reported_at: float | None
    live: bool                  # this node, read from its lookupd's file just now
    stale: bool
    reason: str                 # why it is stale ('' when it is not)
    now: float

    @property
    def age(self) -> float | None:
        """Seconds since the node's lookupd last synced with the database."""
        return None if self.synced_at is None else max(0.0, self.now - self.synced_at)

    @property
    def synced_stamp(self) -> str | None:
        return _stamp(self.synced_at)

    @property
    def reported_stamp(self) -> str | None:
        return _stamp(self.reported_at)

    def age_text(self) -> str:
        return "never" if self.age is None else f"{syncstatus.seconds(self.age)} ago"

    def warning(self) -> str:
        return f"node {self.node}: lookupd's routing snapshot {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "age": self.age, "synced_at": self.synced_at, "connected": self.connected,
                "reported_at": self.reported_at, "live": self.live, "stale": self.stale, "reason": self.reason}


def view(stored: list[dict[str, Any]], here: str, live: SyncStatus | None, now: float | None = None
         ) -> list[NodeView]:
    """Every node, this node (``here``) from ``live`` (its file) when it has one; by name."""
    now = time.time() if now is None else now
    found = {r["node"]: _judge(r["node"], r["synced_at"], r["connected"], r["reported_at"], False, now)
             for r in stored}
    if live is not None and live.verdict != syncstatus.MISSING:
        found[here] = _judge(here, live.synced_at, live.connected and live.alive, live.written_at, True, now,
                             alive=live.alive)
    return [found[n] for n in sorted(found)]


def _judge(node: str, synced_at: float | None, connected: bool, reported_at: float | None, live: bool,
           now: float, *, alive: bool = True) -> NodeView:
    age = None if synced_at is None else now - synced_at
    silent = reported_at is None or now - reported_at > 3 * REPORT_EVERY
    reason = ""
    if not alive:
        reason = "is not being kept: lookupd is not running or hung"
    elif age is None:
        reason = "was never synced: lookupd answers TEMP"
    elif age > STALE_AFTER and silent and not live:    # cut off from the database, or down: not known here
        reason = f"is {syncstatus.seconds(age)} stale (node not reporting since {syncstatus.when(reported_at)})"
    elif age > STALE_AFTER:
        why = "database unreachable" if not connected else "not syncing"
        reason = f"is {syncstatus.seconds(age)} stale ({why}): it answers Postfix from it"
    return NodeView(node, synced_at, connected, reported_at, live, bool(reason), reason, now)


def _stamp(epoch: float | None) -> str | None:
    return None if epoch is None else db.stamp(datetime.fromtimestamp(epoch, timezone.utc))


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return db.parse_stamp(text).timestamp()
    except ValueError:       # written by something else: shown as unknown, never a crash
        return None
