"""BIND importer with 10,000 zones: how long a first import, a re-import and a dry run take,
and where the time goes (reading named.conf, DNS route lookups, writing the database).

    .venv/bin/python -m bench.bind_import [--zones 10000] [--concurrency 64] [--repeat 3]

A real named serves the routes on a free loopback port: one zone ``bench.test`` holding, for
each imported zone ``zN.bench.test``, a TXT route (a third of them), MX records (a third) or a
``mail`` address (the rest), so every strategy is exercised (dns-txt, dns-dom, dns-sub). The
importer reads a named.conf with 10,000 ``zone`` statements (with named-checkconf -p, and with
mrod's own parser for comparison), looks the routes up in that named and writes a fresh
SQLite database through mrod.domains. Nothing leaves 127.0.0.1; the scratch directory is
under bench/out/. Needs Debian's bind9 and bind9-utils.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from mrod import bindimport
from mrod.infra import config as configmod, db
from mrod.entities import relays
from mrod.entities.audit import Actor
from mrod.bindimport import sources
from mrod.bindimport.routes import RouteFinder
from tests.harness.named import start, zone_text

from . import env

OUT = env.ROOT / "bench" / "out"
STRATEGIES = ("dns-txt", "dns-dom", "dns-sub")


def build(directory: Path, count: int) -> tuple[dict[str, str], Path]:
    """The zone named serves, and the named.conf the importer reads."""
    records = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            records.append(f'z{i} TXT "mrodxmailrelay={"primary" if i % 2 else "2"}"')
        elif kind == 1:
            records.append(f"z{i} MX 10 mx.bench.test.")
        else:
            records.append(f"mail.z{i} A 192.0.2.{i % 250 + 1}")
    records.append("mx A 192.0.2.254")
    served = {"bench.test": zone_text("bench.test", "\n".join(records))}
    conf = directory / "import" / "named.conf"
    conf.parent.mkdir(parents=True)
    with open(conf, "w") as out:
        out.write('options { directory "."; };\n')
        for i in range(count):
            out.write(f'zone "z{i}.bench.test" {{ type slave; masters {{ 192.0.2.53; }}; file "z{i}"; }};\n')
    return served, conf


T = TypeVar("T")


async def timed(coro: Awaitable[T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    result = await coro
    return time.perf_counter() - t0, result


async def one_round(cfg: configmod.Config) -> dict[str, float]:
    figures: dict[str, float] = {}
    t0 = time.perf_counter()
    found = await asyncio.to_thread(sources.discover, cfg.bind, cfg.base_dir)
    figures["read named.conf (named-checkconf -p)"] = time.perf_counter() - t0
    own = replace(cfg.bind, checkconf="never")
    t0 = time.perf_counter()
    own_found = await asyncio.to_thread(sources.discover, own, cfg.base_dir)
    figures["read named.conf (mrod parser)"] = time.perf_counter() - t0
    assert own_found.zones.keys() == found.zones.keys()
    seconds, routes = await timed(RouteFinder(cfg.bind).find_all(list(found.zones)))
    figures["route lookups (3 strategies)"] = seconds
    assert len(routes) == len(found.zones)
    async with db.opened(cfg.database.path, create=True) as conn:
        await relays.add(conn, Actor.cli(), name="primary", host="mx1.example.net")
        await relays.add(conn, Actor.cli(), name="secondary", host="mx2.example.net")
        seconds, _ = await timed(bindimport.preview(conn, cfg))
        figures["dry run (whole)"] = seconds
        seconds, first = await timed(bindimport.run(conn, cfg, Actor.cli()))
        figures["first import (whole, every zone added)"] = seconds
        assert first.counts["added"] == len(found.zones), first.counts
        seconds, again = await timed(bindimport.run(conn, cfg, Actor.cli()))
        figures["re-import, nothing changed (whole)"] = seconds
        assert again.counts["unchanged"] == len(found.zones)
    cfg.database.path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(cfg.database.path) + suffix).unlink(missing_ok=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bind-import-", dir=OUT))
    served, conf = build(scratch, args.zones)
    load_before = os.getloadavg()[0]
    named = start(scratch / "named", served)
    try:
        cfg = configmod.from_dict({
            "database": {"path": str(scratch / "mrod.db")},
            "bind": {"named_conf": str(conf), "resolver": "127.0.0.1", "resolver_port": named.port,
                     "strategies": list(STRATEGIES), "dns_concurrency": args.concurrency},
        }, base_dir=scratch)
        rounds = [asyncio.run(one_round(cfg)) for _ in range(args.repeat)]
    finally:
        named.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    load_after = os.getloadavg()[0]
    report = {"zones": args.zones, "concurrency": args.concurrency, "repeat": args.repeat,
              "python": platform.python_version(), "cpus": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": load_after,
              "seconds_median": medians, "seconds_all": rounds}
    (OUT / "bind_import.json").write_text(json.dumps(report, indent=2))
    print(f"{args.zones} zones, dns_concurrency {args.concurrency}, median of {args.repeat} rounds; "
          f"{os.cpu_count()} CPUs, load average {load_before:.2f} before, {load_after:.2f} after")
    print("| phase | seconds |\n|---|---:|")
    for key, value in medians.items():
        print(f"| {key} | {value:.2f} |")


if __name__ == "__main__":
    main()
