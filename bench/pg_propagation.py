"""How soon a node's lookupd answers a change committed through PostgreSQL by another process
(issue 11: "within 100 ms at p99 on loopback").

A private PostgreSQL (tests.harness.postgres: role, password, migrated schema) holds
``--domains`` domains; the real lookupd runs as a subprocess on it (a node); this process is
the writer on "another node" (``mrod.entities.domains.add`` / ``remove``, the code the panel,
API and CLI run). After each commit returns, one socketmap connection polls the name until
the answer changes: the delay is from the commit returning to the first changed answer (the
path: trigger → NOTIFY at commit → lookupd's LISTEN wakes → journal read → rows re-read →
installed on the event loop between two lookups).

    .venv/bin/python -m bench.pg_propagation [--domains 1000] [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from typing import Any

from mrod.entities import domains as domaincore
from mrod.entities import relays as relaycore
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.engine import Target
from tests.harness import postgres

from . import env
from .lookupd_proc import Lookupd, SocketmapClient

ACTOR = Actor.system("bench")
POLL_LIMIT = 5.0   # seconds: a change not answered by then counts as missed
PAUSE = 0.0005     # seconds between two polls (Postfix does not ask in a tight loop either)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def _run(target: Target, client: SocketmapClient, iterations: int) -> dict[str, Any]:
    delays: dict[str, list[float]] = {"add": [], "remove": []}
    missed = 0
    async with db.opened(target) as conn:
        for i in range(iterations):
            name = f"new{i}.bench.example"
            for kind, change, wanted in (
                    ("add", lambda n=name: domaincore.add(conn, ACTOR, n, relay="primary"), "OK"),
                    ("remove", lambda n=name: domaincore.remove(conn, ACTOR, n), "NOTFOUND")):
                await change()
                committed = time.perf_counter()
                while not client.lookup("relay_domains", name).startswith(wanted):
                    time.sleep(PAUSE)  # noqa: ASYNC251 - a blocking client; nothing else runs on this loop
                    if time.perf_counter() - committed > POLL_LIMIT:
                        missed += 1
                        break
                else:
                    delays[kind].append(time.perf_counter() - committed)
    result: dict[str, Any] = {"missed": missed}
    for kind, values in delays.items():
        ms = [v * 1000 for v in values]
        result[kind] = {"n": len(ms), "p50_ms": round(_percentile(ms, 50), 2),
                        "p99_ms": round(_percentile(ms, 99), 2), "max_ms": round(max(ms), 2)}
    return result


async def _seed(target: Target, domains: int) -> None:
    async with db.opened(target) as conn:
        await relaycore.add(conn, ACTOR, name="primary", host="mx1.example.net")
        for i in range(domains):
            await domaincore.add(conn, ACTOR, f"d{i}.bench.example", relay="primary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    bindir = postgres.pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL server not found (apt-get install postgresql)")
    work = env.scratch("pg_propagation")
    server = postgres.Cluster(bindir)
    try:
        server.start()
        target = Target(url=server.url(server.new_database()), password_file=str(server.password_file))
        asyncio.run(_seed(target, args.domains))
        node = Lookupd(work, work / "mrod.db")
        node.config.write_text("\n".join([
            "[database]", f'path = "{work / "mrod.db"}"', f'url = "{target.url}"',
            f'password_file = "{target.password_file}"',
            "[lookupd]", f'socketmap = "{node.endpoint}"', 'policy = ""']) + "\n")
        with node:
            node.start("d0.bench.example")
            with SocketmapClient(node.endpoint) as client:
                result = asyncio.run(_run(target, client, args.iterations))
        result.update(domains=args.domains, iterations=args.iterations, machine=env.machine())
        print(json.dumps(result, indent=2))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
