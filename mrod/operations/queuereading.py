"""Whether the queue was read: each node's last good reading of ``postqueue -j`` and, while
its latest attempt fails, when and why. An empty queue_stat means "nothing waits" only when
the last reading worked; before the first reading, or after a failed one, the figures are not
zeros but unknown, and whoever shows them says so (the panel's dashboard, queue and domain
pages, the queue API)."""

from __future__ import annotations

from dataclasses import dataclass

from mrod.infra.dbapi import Connection

from mrod.infra import db


@dataclass(frozen=True)
class Reading:
    node: str
    read_at: str | None        # the last reading that worked (None: never)
    failed_at: str | None      # the latest attempt, while it fails
    error: str | None

    @property
    def failed(self) -> bool:
        return self.failed_at is not None


async def read_ok(conn: Connection, node: str, at: str) -> None:
    """A reading worked (call inside the transaction that stores its figures)."""
    await conn.execute("INSERT INTO queue_reading (node, read_at, failed_at, error) VALUES (?, ?, NULL, NULL)"
                       " ON CONFLICT (node) DO UPDATE SET read_at = excluded.read_at, failed_at = NULL, error = NULL",
                       (node, at))


async def read_failed(conn: Connection, node: str, error: str) -> None:
    """A reading failed: the figures stored before stay, marked as no longer current."""
    async with db.transaction(conn):
        await conn.execute("INSERT INTO queue_reading (node, read_at, failed_at, error) VALUES (?, NULL, ?, ?)"
                           " ON CONFLICT (node) DO UPDATE SET failed_at = excluded.failed_at, error = excluded.error",
                           (node, db.now(), error[:1000]))


async def readings(conn: Connection) -> dict[str, Reading]:
    """Every node's reading state, by node name (empty: the queue was never read)."""
    async with conn.execute("SELECT node, read_at, failed_at, error FROM queue_reading ORDER BY node") as cur:
        return {r[0]: Reading(*r) for r in await cur.fetchall()}
