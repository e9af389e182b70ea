"""Postfix's ``postmap -q -`` against three maps holding the same domains:

- lookupd's socketmap (the real daemon, a subprocess, on a free 127.0.0.1 port),
- Postfix's in-process ``sqlite:`` map reading the same mrod database file,
- Postfix's ``pgsql:`` map on a private PostgreSQL 15 cluster (what SQL-map panels run),
  over TCP 127.0.0.1 and over its unix socket,
- and, to show what any Python socketmap server costs, bench.floor (answers NOTFOUND to
  everything, no lookup) — its answers are not checked.

lookupd and the floor are run on TCP 127.0.0.1 and on a unix socket, like pgsql, so each
transport is compared like for like.

Same key file for all: ``--keys`` keys, half existing domains and half not, shuffled.
Sequential: one postmap per map and run (one connection, one lookup at a time); concurrent:
``--clients`` postmaps at once, each with its own slice. Runs are interleaved across maps
so background load hits them alike; the median of ``--runs`` is reported. Before timing,
every map's output is checked to be exactly the expected hits.

    .venv/bin/python -m bench.maps [--domains 100000] [--keys 100000] [--clients 16] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from . import dataset, env, pg, postmap
from .lookupd_proc import Floor, Lookupd, ServerProcess


LOOKUPD_TCP = "lookupd socketmap, TCP 127.0.0.1"
LOOKUPD_UNIX = "lookupd socketmap, unix socket"
PGSQL_TCP = "pgsql:, TCP 127.0.0.1"
PGSQL_UNIX = "pgsql:, unix socket"
FLOOR_TCP = "floor (no-op socketmap), TCP 127.0.0.1"
FLOOR_UNIX = "floor (no-op socketmap), unix socket"


def expected_output(keys: list[str], domain_count: int) -> bytes:
    existing = set(dataset.names(domain_count))
    return "".join(f"{k}\t{k}\n" for k in keys if k in existing).encode()


def run(domains: int = 100_000, keys: int = 100_000, clients: int = 16, runs: int = 3,
        lookupd_settings: dict[str, Any] | None = None, keep: bool = False) -> dict[str, Any]:
    env.require_tools()
    work = env.scratch("maps")
    db_path = work / "mrod.db"
    build_seconds = dataset.build_sync(db_path, domains)
    key_list = dataset.keys(domains, keys)
    keys_file = dataset.write_keys(work / "keys.txt", key_list)
    slices = postmap.split_keys(key_list, clients, work)
    want = expected_output(key_list, domains)
    confdir = postmap.config_dir(work)
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.maps --domains {domains} --keys {keys} --clients {clients} --runs {runs}",
        "domains": domains, "keys": keys, "hits": want.count(b"\n"), "clients": clients, "runs": runs,
        "bulk_add_seconds": round(build_seconds, 2), "lookupd_settings": lookupd_settings or {},
        "load_average_before": env.load_average(), "maps": {},
    }
    cluster = pg.Cluster(work)
    lookupd = Lookupd(work, db_path, extra=lookupd_settings)
    lookupd_unix = Lookupd(work, db_path, unix=True, extra=lookupd_settings)
    floors = [Floor(work), Floor(work, unix=True)]
    servers: list[ServerProcess] = [lookupd, lookupd_unix, *floors]
    try:
        cluster.start()
        cluster.load_domains(dataset.names(domains))
        for server in servers:
            server.start(probe_key=dataset.domain_name(0))
        maps = [
            postmap.socketmap(lookupd.endpoint, LOOKUPD_TCP),
            postmap.socketmap(lookupd_unix.endpoint, LOOKUPD_UNIX),
            postmap.sqlite(work, db_path),
            postmap.pgsql(work, "127.0.0.1", cluster.port, pg.DBNAME, pg.USER, PGSQL_TCP),
            postmap.pgsql(work, str(cluster.sockdir), cluster.port, pg.DBNAME, pg.USER, PGSQL_UNIX),
            postmap.socketmap(floors[0].endpoint, FLOOR_TCP),
            postmap.socketmap(floors[1].endpoint, FLOOR_UNIX),
        ]
        unchecked = {FLOOR_TCP, FLOOR_UNIX}
        # A benchmark that answers wrong is worthless: check every map first (this also warms
        # the caches of all of them alike).
        for m in maps:
            if m.label in unchecked:
                continue
            _seconds, out = postmap.run_once(confdir, m, keys_file)
            if out != want:
                raise RuntimeError(f"{m.label} answered differently from the expected hits")
            _seconds, outs = postmap.run_parallel(confdir, m, slices)
            if b"".join(outs) != want:
                raise RuntimeError(f"{m.label} answered differently with {clients} clients")
        seq: dict[str, list[float]] = {m.label: [] for m in maps}
        par: dict[str, list[float]] = {m.label: [] for m in maps}
        cpu: dict[str, list[float]] = {"sequential": [], "concurrent": []}
        for _ in range(runs):
            for m in maps:
                before = lookupd.cpu_seconds()
                seconds, out = postmap.run_once(confdir, m, keys_file)
                if m is maps[0]:
                    cpu["sequential"].append(lookupd.cpu_seconds() - before)
                if out != want and m.label not in unchecked:
                    raise RuntimeError(f"{m.label} answered differently in a timed run")
                seq[m.label].append(seconds)
            for m in maps:
                before = lookupd.cpu_seconds()
                seconds, outs = postmap.run_parallel(confdir, m, slices)
                if m is maps[0]:
                    cpu["concurrent"].append(lookupd.cpu_seconds() - before)
                if b"".join(outs) != want and m.label not in unchecked:
                    raise RuntimeError(f"{m.label} answered differently in a timed run")
                par[m.label].append(seconds)
        for m in maps:
            s, p = env.median(seq[m.label]), env.median(par[m.label])
            result["maps"][m.label] = {
                "spec": m.spec.replace(str(work), "$WORK"),
                "sequential_seconds": [round(x, 3) for x in seq[m.label]],
                "sequential_lookups_per_s": round(keys / s),
                "sequential_us_per_lookup": round(s / keys * 1e6, 1),
                "concurrent_seconds": [round(x, 3) for x in par[m.label]],
                "concurrent_lookups_per_s": round(keys / p),
            }
        result["lookupd_cpu_us_per_lookup"] = {
            k: round(env.median(v) / keys * 1e6, 1) for k, v in cpu.items()}
        result["lookupd_rss_kib"] = lookupd.rss_kib()
        result["load_average_after"] = env.load_average()
        result["targets"] = targets(result)
    finally:
        for server in servers:
            server.stop()
        cluster.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, transport for transport: lookupd over TCP against pgsql over TCP,
    and over a unix socket against pgsql over its unix socket."""
    maps = result["maps"]
    found: dict[str, Any] = {}
    for ours, theirs, floor, transport in ((LOOKUPD_TCP, PGSQL_TCP, FLOOR_TCP, "tcp"),
                                           (LOOKUPD_UNIX, PGSQL_UNIX, FLOOR_UNIX, "unix")):
        for mode, key, target in (("sequential", "sequential_lookups_per_s", 1.5),
                                  ("concurrent", "concurrent_lookups_per_s", 2.0)):
            ratio = maps[ours][key] / maps[theirs][key]
            floor_ratio = maps[floor][key] / maps[theirs][key]
            found[f"{mode}_{transport}"] = {
                "ratio": round(ratio, 2), "target": target, "met": ratio >= target,
                # The best any Python socketmap could do here (a server that does nothing).
                "floor_ratio": round(floor_ratio, 2),
            }
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="[lookupd] workers for the daemon")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    settings = {"workers": args.workers} if args.workers else None
    print(json.dumps(run(args.domains, args.keys, args.clients, args.runs, settings, args.keep), indent=2))


if __name__ == "__main__":
    main()
