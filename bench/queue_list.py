"""Listing a large Postfix queue message by message (issue 21.5): a generated ``postqueue -j``
stream of N messages through mrod's real lister — the same ``queueactions.list_page`` that
``mrod queue list``, the panel and the API call: the subprocess read in chunks, parsed on the
worker thread, every recipient domain classified against a real SQLite route store of 1,000
domains, the page kept in a bounded structure.

    .venv/bin/python -m bench.queue_list --messages 100000 [--messages 1000000]

``[postfix] postqueue`` points at a tiny script that prints the generated file (``cat``), so
the figures are mrod's side only (Postfix's own showq walk is not in them). Time: the median
of --repeats runs without tracing; peak memory: one further run under tracemalloc (Python
allocations during the listing) and the process's ru_maxrss after everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import stat
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from mrod.entities import domains, relays
from mrod.entities.audit import Actor
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.operations import queueactions
from mrod.operations.queuelist import QueueFilter

ACTOR = Actor("bench", "cli", "local")
OURS = 1000           # mrod domains; recipients also go to as many domains that are not mrod's
REASON = "connect to mx1.example.net[192.0.2.10]:25: Connection refused"


def generate(path: Path, count: int, seed: int = 21) -> None:
    """``postqueue -j`` lines: random-looking queue ids, 1-3 recipients, 90% deferred."""
    rnd = random.Random(seed)
    now = int(time.time())
    with open(path, "w") as out:
        for i in range(count):
            qid = f"{rnd.getrandbits(40):010X}"
            rcpts = [{"address": f"user{rnd.randrange(1000)}@d{rnd.randrange(2 * OURS)}.example",
                      "delay_reason": REASON} for _ in range(rnd.choice((1, 1, 1, 2, 3)))]
            out.write(json.dumps({
                "queue_name": "deferred" if i % 10 else "active", "queue_id": qid,
                "arrival_time": now - rnd.randrange(5 * 86400), "message_size": rnd.randrange(2000, 200000),
                "forced_expire": False, "sender": f"sender{rnd.randrange(5000)}@client{rnd.randrange(50)}.test",
                "recipients": rcpts}) + "\n")


async def seed(path: Path) -> None:
    async with db.opened(path, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mx1.example.net")
        await domains.add_many(conn, ACTOR, [(f"d{i}.example", {"relay": "primary"}) for i in range(OURS)])


async def one(cfg: configmod.Config, flt: QueueFilter, limit: int, after: str | None) -> tuple[float, Any]:
    started = time.perf_counter()
    page = await queueactions.list_page(cfg, flt, limit=limit, after=after)
    return time.perf_counter() - started, page


def measure(cfg: configmod.Config, name: str, flt: QueueFilter, limit: int, repeats: int,
            after: str | None = None) -> dict[str, Any]:
    times = []
    page = None
    for _ in range(repeats):
        seconds, page = asyncio.run(one(cfg, flt, limit, after))
        times.append(seconds)
    tracemalloc.start()
    asyncio.run(one(cfg, flt, limit, after))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert page is not None
    return {"view": name, "limit": limit, "matches": page.total, "shown": len(page.messages),
            "seconds_median": round(statistics.median(times), 2), "seconds_max": round(max(times), 2),
            "peak_traced_mib": round(peak / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, action="append")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "out"
    out_dir.mkdir(exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        asyncio.run(seed(work / "mrod.db"))
        for count in args.messages or [100_000]:
            stream = work / f"queue-{count}.jsonl"
            started = time.perf_counter()
            generate(stream, count)
            print(f"{count} messages generated ({stream.stat().st_size / 2**20:.0f} MiB) in"
                  f" {time.perf_counter() - started:.1f}s")
            fake = work / "postqueue"
            fake.write_text(f"#!/bin/sh\nexec cat {stream}\n")
            fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
            cfg = configmod.from_dict({"database": {"path": str(work / "mrod.db")},
                                       "postfix": {"postqueue": str(fake)}, "queue": {"timeout": 3600}})
            d42 = asyncio.run(_domain_filter(cfg, "d42.example"))
            first = asyncio.run(one(cfg, QueueFilter(), 50, None))[1]
            middle = first.messages[-1].message.queue_id
            views = [("first page, no filter", QueueFilter(), 50, None),
                     ("a page after a cursor", QueueFilter(), 50, "8" + middle[1:]),
                     ("one domain (d42.example)", d42, 50, None),
                     ("sender contains 'sender42@'", QueueFilter(sender="sender42@"), 50, None),
                     ("1000 per page", QueueFilter(), 1000, None)]
            for name, flt, limit, after in views:
                row = {"messages": count, **measure(cfg, name, flt, limit, args.repeats, after)}
                print(row)
                results.append(row)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (ru_maxrss): {maxrss:.0f} MiB")
    (out_dir / "queue_list.json").write_text(json.dumps({"results": results, "maxrss_mib": round(maxrss)},
                                                        indent=2) + "\n")


async def _domain_filter(cfg: configmod.Config, name: str) -> QueueFilter:
    async with db.opened(cfg.database) as conn:
        return await queueactions.build_filter(conn, domain=name)


if __name__ == "__main__":
    main()
