"""The ``queue_stat`` table: each node's last queue reading per mrod domain, which the policy
service's per-domain quota, the panel, the CLI and /metrics read.

Rows are per node (``[node] name``): each node has its own Postfix queue, writes only its own
rows, and its quota reads only them.
"""

from __future__ import annotations

import logging
from typing import Any

from mrod.infra.dbapi import Connection

from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.operations import outages, queueread, queuereading
from mrod.operations.postqueue import QueueUnavailable
from mrod.operations.queueread import QueueReport
from mrod.operations.queuetimes import age, arrived

log = logging.getLogger("mrod.queue")


async def write_stats(conn: Connection, report: QueueReport, node: str) -> None:
    """Replace this node's queue_stat rows with the report's per-row figures (one transaction);
    other nodes' rows stay. Rows from before migration 0007 (node '') go too."""
    rows = [(node, domain_id, q.messages, q.bytes, q.oldest, q.last_reason, report.read_at)
            for domain_id, q in report.rows.items()]
    async with db.transaction(conn):
        await conn.execute("DELETE FROM queue_stat WHERE node IN (?, '')", (node,))
        # A row deleted since the queue was read is skipped (its id no longer exists).
        await conn.executemany(
            "INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, last_reason, updated_at)"
            " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM domain WHERE id = ?)",
            [(*row, row[1]) for row in rows])
        await queuereading.read_ok(conn, node, report.read_at)


async def refresh(cfg: Config) -> QueueReport:
    """Read the queue and store the per-domain figures for the quota; a reading that fails is
    stored as failed (with why), so nobody takes the old figures, or none, for an empty queue."""
    try:
        report = await queueread.read(cfg)
    except QueueUnavailable as exc:
        try:
            async with db.opened(cfg.database) as conn:
                await queuereading.read_failed(conn, cfg.node.name, str(exc))
        except MrodError as db_exc:     # the reading's own error is the one to report
            log.debug("queue: could not store the failed reading: %s", db_exc)
        raise
    async with db.opened(cfg.database) as conn:
        await write_stats(conn, report, cfg.node.name)
        await outages.note_queue(conn, cfg.node.name, {i: q.messages for i, q in report.rows.items()},
                                 report.read_at)
    return report


async def stats(conn: Connection, *, owner_id: int | None = None, node: str | None = None
                ) -> list[dict[str, Any]]:
    """The stored per-domain figures (as the last refresh saw them), largest first; with
    ``owner_id``, only that user's domains (permission domains_own); with ``node``, only that
    node's queue (None: every node's, one row per node and domain)."""
    sql = ("SELECT d.id, d.name, d.owner_id, q.messages, q.bytes, q.oldest, q.last_reason, q.updated_at, q.node"
           " FROM queue_stat q JOIN domain d ON d.id = q.domain_id")
    where, args = _filters(owner_id, node)
    async with conn.execute(sql + where + " ORDER BY q.messages DESC, d.name, q.node", args) as cur:
        rows = await cur.fetchall()
    keys = ("id", "domain", "owner_id", "messages", "bytes", "oldest", "last_reason", "updated_at", "node")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _filters(owner_id: int | None, node: str | None) -> tuple[str, tuple[Any, ...]]:
    """' WHERE …' for queue_stat q joined with domain d, and its arguments."""
    return db.where_equal(("d.owner_id", owner_id), ("q.node", node))


async def stat_for(conn: Connection, domain_id: int, node: str) -> dict[str, Any] | None:
    """One domain's figures from the node's last reading (None: nothing queued for it then)."""
    async with conn.execute("SELECT messages, bytes, oldest, last_reason, updated_at FROM queue_stat"
                            " WHERE node = ? AND domain_id = ?", (node, domain_id)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return dict(zip(("messages", "bytes", "oldest", "last_reason", "updated_at"), row, strict=True)) | {
        "age": age(row[2]), "oldest_at": arrived(row[2])}


async def totals(conn: Connection, *, owner_id: int | None = None, node: str | None = None
                 ) -> dict[str, Any]:
    """The whole reading in one row: messages, bytes, domains with mail, the oldest message's
    arrival (and the domain it waits for), when it was read; one node's, or every node's."""
    where, args = _filters(owner_id, node)
    async with conn.execute(
        "SELECT coalesce(sum(q.messages), 0), coalesce(sum(q.bytes), 0), count(*), min(q.oldest),"
        f" max(q.updated_at) FROM queue_stat q JOIN domain d ON d.id = q.domain_id{where}", args) as cur:
        row = await cur.fetchone()
    messages, size, domains, oldest, updated_at = row if row else (0, 0, 0, None, None)
    oldest_domain = None
    if oldest is not None:
        extra = (where + " AND" if where else " WHERE") + " q.oldest = ?"
        async with conn.execute("SELECT d.name FROM queue_stat q JOIN domain d ON d.id = q.domain_id"
                                f"{extra} ORDER BY d.name LIMIT 1", (*args, oldest)) as cur:
            found = await cur.fetchone()
        oldest_domain = found[0] if found else None
    return {"messages": messages, "bytes": size, "domains": domains, "oldest": oldest, "age": age(oldest),
            "oldest_at": arrived(oldest),
            "oldest_domain": oldest_domain, "updated_at": updated_at}
