"""``mrod health --history [RELAY|DOMAIN]``: each primary's outages as this node saw them
(every node's with --all-nodes) and its availability over 7 and 30 days."""

from __future__ import annotations

import argparse
from typing import Any

from mrod.entities import domains, relays
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.errors import InvalidInput, NotFound
from mrod.operations import outages
from mrod.cli import common


async def relay_ids_for(conn: Connection, what: str) -> list[tuple[int, str]]:
    """(id, name) of the relays a --history argument names: all, a relay, or a domain's relay."""
    if not what:
        return [(r.id, r.name) for r in await relays.list_all(conn)]
    try:
        relay = await relays.get(conn, what)
        return [(relay.id, relay.name)]
    except (NotFound, InvalidInput):
        pass
    try:
        domain = await domains.get(conn, what)
    except (NotFound, InvalidInput):
        raise NotFound(f"{what!r} is neither a relay nor a domain") from None
    if domain.relay_id is None:
        raise NotFound(f"{domain.name} is routed by its own host or MX records, not a relay: "
                       "only relays have an outage history")
    return [(domain.relay_id, domain.relay_name or "")]


async def collect(conn: Connection, what: str, node: str | None) -> list[dict[str, Any]]:
    found = []
    seen = set()
    for relay_id, name in await relay_ids_for(conn, what):
        if relay_id in seen:
            continue
        seen.add(relay_id)
        views = [node] if node is not None else sorted({o["node"] for o in await outages.history(
            conn, relay_id=relay_id, limit=1000)}) or [""]
        for view in views:
            found.append({"relay": name, "node": view, **await outages.summary(conn, relay_id, view)})
    return found


def show(args: argparse.Namespace, cfg: Config) -> int:
    what = args.history.strip()

    async def work(conn: Connection) -> list[dict[str, Any]]:
        return await collect(conn, what, None if args.all_nodes else cfg.node.name)

    rows = common.with_db(cfg, work)
    if args.json:
        common.print_json(rows)
        return 0
    for row in rows:
        print(f"relay {row['relay']} (node {row['node'] or '-'}): available {row['availability_7d']:.2%} over 7 days,"
              f" {row['availability_30d']:.2%} over 30 days")
        common.print_table(["started", "ended", "duration", "queued", "flushed in"],
                           [(o["started_at"], o["ended_at"] or "ongoing", _span(o["duration_s"]), o["queued"],
                             _span(o["flush_s"]) if o["flush_s"] is not None else ("" if o["ongoing"] else "not yet"))
                            for o in row["outages"]])
    if not rows:
        print("no relays")
    return 0


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 86400}d {s % 86400 // 3600}h" if s >= 86400 else (
        f"{s // 3600}h {s % 3600 // 60}m" if s >= 3600 else f"{s // 60}m {s % 60}s")


