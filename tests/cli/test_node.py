"""``mrod node rm``: a node taken out of service is forgotten — its status row and every
reading stored under its name — audited; this node and an unknown name are refused. Both engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mrod.entities import audit
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.operations import nodereports


def _stored(config_file: Path, node: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        async with db.opened(configmod.load(config_file, env={}).database) as conn:
            found = {}
            for table in nodereports.NODE_TABLES:
                async with conn.execute(f"SELECT count(*) FROM {table} WHERE node = ?", (node,)) as cur:
                    row = await cur.fetchone()
                    assert row is not None
                    found[table] = row[0]
            return found

    return asyncio.run(count())


def _seed_node(config_file: Path, node: str) -> None:
    async def seed() -> None:
        async with db.opened(configmod.load(config_file, env={}).database) as conn:
            await nodereports.upsert(conn, node, 1_800_000_000.0, True)
            async with db.transaction(conn):
                await conn.execute("INSERT INTO queue_stat (node, domain_id, messages, bytes, updated_at)"
                                   " SELECT ?, id, 3, 4096, '2026-12-02T08:00:00Z' FROM domain", (node,))
                await conn.execute("INSERT INTO relay_health (node, relay_id, state) SELECT ?, id, 'down' FROM relay",
                                   (node,))

    asyncio.run(seed())


def test_a_node_out_of_service_is_forgotten(ready, config_file: Path) -> None:
    _seed_node(config_file, "mx-old")
    _seed_node(config_file, "mx-kept")
    r = ready("node", "rm", "mx-old")
    assert r.code == 0, r.err
    assert r.out.strip() == "node mx-old forgotten: 1 node_status, 1 queue_stat, 1 relay_health"
    assert set(_stored(config_file, "mx-old").values()) == {0}
    assert _stored(config_file, "mx-kept")["node_status"] == 1          # the others stay

    async def entries() -> list[audit.AuditEntry]:
        async with db.opened(configmod.load(config_file, env={}).database) as conn:
            return await audit.entries(conn, entity="node", key="mx-old")

    [entry] = asyncio.run(entries())
    assert entry.action == "remove" and entry.before == {"node_status": 1, "queue_stat": 1, "relay_health": 1}
    again = ready("node", "rm", "mx-old")
    assert again.code == 1 and again.err.strip() == "mrod: error: nothing is stored for node 'mx-old'"
    here = configmod.load(config_file, env={}).node.name
    _seed_node(config_file, here)
    refused = ready("node", "rm", here)
    assert refused.code == 2 and "is this node ([node] name)" in refused.err
    assert _stored(config_file, here)["node_status"] == 1               # nothing changed
