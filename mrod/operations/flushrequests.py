"""Flushes asked for on one node of mail another node holds (each node has its own queue).

Each node has its own Postfix queue, so ``postqueue -s`` only helps on the node that holds the
mail. The panel of node A, asked to flush a domain's mail that node B's reading shows, stores a
``flush_request`` row naming B; B's queue job (``take``, every [queue] interval) deletes its own
rows and flushes those domains. A request for this node itself is flushed at once, not stored.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable


from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.infra.config import Config
from mrod.operations import queueflush

log = logging.getLogger("mrod.queue")


async def ask(conn: Connection, node: str, domain_id: int, requested_by: str) -> None:
    """Store a request for ``node`` to flush the domain row's mail (one pending per node and
    domain: asking twice before the node acts is one flush)."""
    async with db.transaction(conn):
        await conn.execute(
            "INSERT INTO flush_request (node, domain_id, requested_at, requested_by) SELECT ?, ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM flush_request WHERE node = ? AND domain_id = ?)",
            (node, domain_id, db.now(), requested_by, node, domain_id))


async def pending(conn: Connection, node: str | None = None) -> list[dict[str, object]]:
    """Requests not yet taken (one node's, or every node's), oldest first."""
    on, args = (" WHERE r.node = ?", (node,)) if node is not None else ("", ())
    async with conn.execute(
        "SELECT r.node, d.name, r.requested_at, r.requested_by FROM flush_request r"
        f" JOIN domain d ON d.id = r.domain_id{on} ORDER BY r.id", args) as cur:
        return [dict(zip(("node", "domain", "requested_at", "requested_by"), row, strict=True))
                for row in await cur.fetchall()]


Flusher = Callable[[Config, dict[int, str]], Awaitable[list[queueflush.FlushResult]]]


async def take(cfg: Config, flusher: Flusher = queueflush.flush_rows) -> list[queueflush.FlushResult]:
    """This node's queue job: take (delete) the requests naming it and flush their domains."""
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            async with conn.execute(
                    "SELECT r.domain_id, d.name FROM flush_request r JOIN domain d ON d.id = r.domain_id"
                    " WHERE r.node = ?", (cfg.node.name,)) as cur:
                rows = {row[0]: row[1] for row in await cur.fetchall()}
            await conn.execute("DELETE FROM flush_request WHERE node = ?", (cfg.node.name,))
    if not rows:
        return []
    log.info("flush requested through the database for %s", ", ".join(sorted(rows.values())))
    return await flusher(cfg, rows)
