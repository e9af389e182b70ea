"""The admin panel's domain list with 100k domains: is it fast to search, filter, sort and page?

Builds a database with mrod's own code (bench.dataset: ``domainimport.bulk_add``), 100k domains on
two relays, some disabled, some with listed recipients, 1% owned by a ``domains_own`` user.
Then, for each list view an operator uses, times

* the query alone — ``mrod.domains.search`` (the page's rows + the total count), and
* the whole page — ``GET /domains?...`` from the real app (``admin.app.create_app``) on a
  loopback test server, signed in, HTML rendered: what a browser waits for.

Each view is asked ``--repeats`` times after one warm-up; median and p95 in milliseconds.
Results go to ``bench/out/panel_list.json`` and a Markdown table is printed.

    .venv/bin/python -m bench.panel_list [--domains 100000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mrod.admin.app import create_app
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import domains, relays, users
from mrod.entities.audit import Actor

from . import dataset, env

SYSTEM = Actor.system("bench")
PASSWORD = "bench password"

# (label, query string) — the views the list offers.
VIEWS = [
    ("first page (sort by name)", ""),
    ("page 1000 of 2000", "page=1000"),
    ("last page", "page=2000"),
    ("search 'shop12'", "q=shop12"),
    ("search, no match", "q=nomatch-zz"),
    ("filter: disabled", "enabled=no"),
    ("filter: relay backup", "relay=backup"),
    ("filter: recipients listed", "recipients=listed"),
    ("sort by relay", "sort=relay"),
    ("sort by changed, descending", "sort=updated_at&dir=desc"),
    ("sort by state, page 500", "sort=enabled&page=500"),
    ("200 per page", "per_page=200"),
]


async def prepare(path: Path, count: int) -> None:
    await dataset.build(path, count)
    async with db.opened(path) as conn:
        await relays.add(conn, SYSTEM, name="backup", host="mx2.example.net", port=2525)
        owner = await users.add(conn, SYSTEM, "owner", PASSWORD, perms=["domains_own"], rounds=4)
        await users.add(conn, SYSTEM, "root", PASSWORD, is_admin=True, rounds=4)
        async with db.transaction(conn):
            # Variety for the filters: 10% on the other relay, 5% disabled, 2% listed, 1% owned.
            await conn.execute("UPDATE domain SET relay_id = (SELECT id FROM relay WHERE name = 'backup')"
                               " WHERE id % 10 = 3")
            await conn.execute("UPDATE domain SET enabled = 0 WHERE id % 20 = 7")
            await conn.execute("UPDATE domain SET recipients = 'listed' WHERE id % 50 = 11")
            await conn.execute("UPDATE domain SET owner_id = ? WHERE id % 100 = 5", (owner.id,))
        await conn.execute("ANALYZE")


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered) * 1000, 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2)}


async def _timed(fn: Any, repeats: int) -> dict[str, float]:
    await fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return _ms(samples)


def _search_args(query: str) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    from mrod.admin.domains import list_query

    params = dict(parse_qsl(query))
    per_page = int(params.get("per_page", 50))
    page = int(params.get("page", 1))
    return {**list_query(params), "limit": per_page, "offset": (page - 1) * per_page}


async def _client(cfg: configmod.Config, name: str) -> TestClient:
    client = TestClient(TestServer(create_app(cfg)))
    await client.start_server()
    page = await (await client.get("/login")).text()
    match = re.search(r'name="csrf_token" value="([^"]*)"', page)
    if match is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    token = match.group(1)
    response = await client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token},
                                 allow_redirects=False)
    if response.status != 303:
        raise RuntimeError(f"sign-in as {name} failed: {response.status}")
    return client


async def measure(path: Path, repeats: int) -> list[dict[str, Any]]:
    cfg = configmod.from_dict({"database": {"path": str(path)}, "admin": {"bcrypt_rounds": 4}}, base_dir=path.parent)
    rows = []
    async with db.opened(path) as conn:
        owner = await users.get(conn, "owner")
        admin = await _client(cfg, "root")
        own = await _client(cfg, "owner")
        try:
            for label, query in VIEWS:
                args = _search_args(query)

                # Both are awaited within this iteration, so the loop variables they read are current.
                async def query_only() -> None:
                    await domains.search(conn, **args)  # noqa: B023

                async def page() -> None:
                    response = await admin.get("/domains?" + query)  # noqa: B023
                    if response.status != 200:
                        raise RuntimeError(f"GET /domains?{query}: {response.status}")  # noqa: B023
                    await response.read()
                found = await domains.search(conn, **args)
                rows.append({"view": label, "query": query, "total": found.total,
                             "search": await _timed(query_only, repeats), "page": await _timed(page, repeats)})

            async def own_query() -> None:
                await domains.search(conn, owner_id=owner.id, limit=50)

            async def own_page() -> None:
                await (await own.get("/domains")).read()
            found = await domains.search(conn, owner_id=owner.id, limit=50)
            rows.append({"view": "domains_own user, first page", "query": "", "total": found.total,
                         "search": await _timed(own_query, repeats), "page": await _timed(own_page, repeats)})
        finally:
            await admin.close()
            await own.close()
    return rows


def report(rows: list[dict[str, Any]], count: int, build_seconds: float) -> str:
    lines = [f"Domain list with {count:,} domains (built in {build_seconds:.1f} s); milliseconds, median / p95.",
             "", "| view | matches | query (search + count) | whole page (HTTP, HTML) |", "|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['view']} | {row['total']:,} | {row['search']['median']} / {row['search']['p95']} "
                     f"| {row['page']['median']} / {row['page']['p95']} |")
    return "\n".join(lines)


def run(domains_count: int = 100_000, repeats: int = 20) -> dict[str, Any]:
    work = env.scratch("panel")
    try:
        path = work / "mrod.db"
        started = time.perf_counter()
        asyncio.run(prepare(path, domains_count))
        built = time.perf_counter() - started
        rows = asyncio.run(measure(path, repeats))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"domains": domains_count, "repeats": repeats, "build_seconds": round(built, 1), "views": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    result = run(args.domains, args.repeats)
    env.OUT.mkdir(parents=True, exist_ok=True)
    (env.OUT / "panel_list.json").write_text(json.dumps(result, indent=2) + "\n")
    print(report(result["views"], result["domains"], result["build_seconds"]))


if __name__ == "__main__":
    main()
