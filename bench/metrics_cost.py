"""What the metrics hooks cost lookupd: lookups per second, in process and over a socketmap
connection, on a small database. Run it before and after a change to the hot path:

    .venv/bin/python -m bench.metrics_cost [--seconds 3] [--rounds 5]

Prints the median of the rounds for each loop (bounded in count and time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from mrod.lookupd.daemon import Lookupd
from mrod.lookupd.service import LookupService
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import domains, relays
from mrod.answers import routing
from mrod.entities.audit import Actor

ACTOR = Actor("bench", "cli", "local")
KEYS = [b"example.com", b"sub.example.com", b"nothere.example", b"example.org"]


async def seed(path: Path) -> None:
    async with db.opened(path, create=True) as conn:
        await relays.add(conn, ACTOR, name="primary", host="mx1.example.net")
        await domains.add(conn, ACTOR, "example.com", relay="primary", include_subdomains=True)
        await domains.add(conn, ACTOR, "example.org", relay="primary")


def in_process(path: Path, seconds: float, limit: int = 5_000_000) -> float:
    service = LookupService(path, routing.DEFAULT_OPTIONS)
    n, started = 0, time.perf_counter()
    deadline = started + seconds
    while n < limit and time.perf_counter() < deadline:
        for key in KEYS:
            service.answer_now("relay_domains", key)
        n += len(KEYS)
    rate = n / (time.perf_counter() - started)
    service.close()
    return rate


async def over_socketmap(path: Path, seconds: float, limit: int = 1_000_000) -> float:
    cfg = configmod.from_dict({"database": {"path": str(path)},
                               "lookupd": {"socketmap": "127.0.0.1:0", "policy": ""}})
    daemon = Lookupd(cfg)
    await daemon.start()
    try:
        port = daemon.listener("socketmap").port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n, started = 0, time.perf_counter()
        deadline = started + seconds
        while n < limit and time.perf_counter() < deadline:
            for key in KEYS:
                request = b"relay_domains " + key
                writer.write(b"%d:%s," % (len(request), request))
                await writer.drain()
                header = await reader.readuntil(b":")
                await reader.readexactly(int(header[:-1]) + 1)
            n += len(KEYS)
        rate = n / (time.perf_counter() - started)
        writer.close()
        return rate
    finally:
        await daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mrod.db"
        asyncio.run(seed(path))
        local = [in_process(path, args.seconds) for _ in range(args.rounds)]
        wire = [asyncio.run(over_socketmap(path, args.seconds)) for _ in range(args.rounds)]
    print(json.dumps({"in_process_lookups_per_s": round(statistics.median(local)),
                      "socketmap_lookups_per_s": round(statistics.median(wire)),
                      "rounds": args.rounds, "seconds": args.seconds}))


if __name__ == "__main__":
    main()
