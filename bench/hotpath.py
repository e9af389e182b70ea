"""Why lookupd runs its lookup query on the event loop: one lookup query (the one
``mrod.routestore.RouteStore.domains_named`` runs for a key and its parent domains) on a
database of ``--domains`` domains, awaited from a coroutine three ways:

- stdlib sqlite3 called directly on the event loop (what lookupd does),
- aiosqlite (its worker thread; every call is a thread hop and a future),
- ``asyncio.to_thread`` around the same stdlib call (a thread hop without aiosqlite).

Keys are the benchmark key set (half existing domains); µs per query is the median of
``--repeats`` passes over ``--queries`` keys, all on warm caches.

    .venv/bin/python -m bench.hotpath [--domains 1000000] [--queries 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiosqlite

from mrod.infra import names
from mrod.answers.routestore import _DOMAINS_SQL, RouteStore

from . import dataset, env


async def _measure(db_path: Path, keys: list[str], repeats: int) -> dict[str, float]:
    candidates = [[k, *names.parent_domains(k)] for k in keys]
    sqls = {n: _DOMAINS_SQL.format(", ".join("?" * n)) for n in {len(c) for c in candidates}}
    store = RouteStore.open(db_path)
    conn = await aiosqlite.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        async def on_loop() -> int:
            return sum(len(store.domains_named(c)) for c in candidates)

        async def via_aiosqlite() -> int:
            found = 0
            for c in candidates:
                async with conn.execute(sqls[len(c)], c) as cur:
                    found += len(await cur.fetchall())  # type: ignore[arg-type]  # a list; typed Iterable
            return found

        async def via_to_thread() -> int:
            found = 0
            for c in candidates:
                found += len(await asyncio.to_thread(store.domains_named, c))
            return found

        ways = {"sqlite3 on the event loop": on_loop, "aiosqlite (thread hop)": via_aiosqlite,
                "asyncio.to_thread + sqlite3": via_to_thread}
        times: dict[str, list[float]] = {name: [] for name in ways}
        hits = {name: 0 for name in ways}
        for _ in range(repeats):
            for name, way in ways.items():   # interleaved, so background load hits all alike
                started = time.perf_counter()
                hits[name] = await way()
                times[name].append(time.perf_counter() - started)
        if len(set(hits.values())) != 1:
            raise RuntimeError(f"the three ways found different rows: {hits}")
        return {name: round(env.median(t) / len(keys) * 1e6, 2) for name, t in times.items()}
    finally:
        await conn.close()
        store.close()


def run(domains: int = 1_000_000, queries: int = 20_000, repeats: int = 5,
        db_path: Path | None = None) -> dict[str, Any]:
    with dataset.database("hotpath", domains, db_path) as path:
        us = asyncio.run(_measure(path, dataset.keys(domains, queries), repeats))
    fast = us["sqlite3 on the event loop"]
    return {
        "command": f".venv/bin/python -m bench.hotpath --domains {domains} --queries {queries} --repeats {repeats}",
        "domains": domains, "queries": queries, "us_per_query": us,
        "aiosqlite_vs_loop": round(us["aiosqlite (thread hop)"] / fast, 1),
        "to_thread_vs_loop": round(us["asyncio.to_thread + sqlite3"] / fast, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(json.dumps(run(args.domains, args.queries, args.repeats), indent=2))


if __name__ == "__main__":
    main()
