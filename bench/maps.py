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
Sequential: one postmap per map and run (one connection, one lookup at a time), once where
the scheduler puts the processes and once "pinned" — postmap and the server process (the
PostgreSQL postmaster, whose backends inherit it) on one vCPU, which takes this VM's slow
wake-ups across vCPUs out of the round trip; concurrent: ``--clients`` postmaps at once,
each with its own slice. Runs are interleaved across maps so background load hits them
alike; the median of ``--runs`` is reported. Before timing, every map's output is checked
to be exactly the expected hits, and again in every timed run.

    .venv/bin/python -m bench.maps [--domains 100000] [--keys 100000] [--clients 16] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import dataset, env, pg, postmap
from .lookupd_proc import C_FLOOR_SOURCE, CFloor, Floor, Lookupd, ServerProcess, UvloopFloor


# sequential: one postmap, processes where the scheduler puts them; pinned: the same with
# postmap and the server on one vCPU (no wake-up across vCPUs, which is slow in this VM);
# concurrent: --clients postmaps at once.
MODES = ("sequential", "pinned", "concurrent")
PIN_CPUS = {0}
LOOKUPD_TCP = "lookupd socketmap, TCP 127.0.0.1"
LOOKUPD_UNIX = "lookupd socketmap, unix socket"
PGSQL_TCP = "pgsql:, TCP 127.0.0.1"
PGSQL_UNIX = "pgsql:, unix socket"
FLOOR_TCP = "floor (no-op socketmap), TCP 127.0.0.1"
FLOOR_UNIX = "floor (no-op socketmap), unix socket"
FLOOR_UVLOOP = "floor (no-op socketmap) on uvloop, TCP 127.0.0.1"
C_FLOOR = "C floor (reference: floor.c, no lookup), TCP 127.0.0.1"
SQLITE = "sqlite: (in Postfix)"
# --rows: short names of the rows to run (default: all)
ROWS = {"lookupd-tcp": LOOKUPD_TCP, "lookupd-unix": LOOKUPD_UNIX, "sqlite": SQLITE, "pgsql-tcp": PGSQL_TCP,
        "pgsql-unix": PGSQL_UNIX, "floor-tcp": FLOOR_TCP, "floor-unix": FLOOR_UNIX, "floor-uvloop": FLOOR_UVLOOP,
        "c-floor": C_FLOOR, "baseline": "baseline"}


@contextmanager
def pinned(pids: list[int], cpus: set[int]) -> Iterator[None]:
    """Pin these processes to ``cpus`` for the duration (children forked meanwhile inherit it)."""
    saved = {pid: os.sched_getaffinity(pid) for pid in pids}
    for pid in pids:
        os.sched_setaffinity(pid, cpus)
    try:
        yield
    finally:
        for pid, mask in saved.items():
            try:
                os.sched_setaffinity(pid, mask)
            except ProcessLookupError:
                pass


def expected_output(keys: list[str], domain_count: int) -> bytes:
    existing = set(dataset.names(domain_count))
    return "".join(f"{k}\t{k}\n" for k in keys if k in existing).encode()


def run(domains: int = 100_000, keys: int = 100_000, clients: int = 16, runs: int = 3,
        lookupd_settings: dict[str, Any] | None = None, keep: bool = False,
        baselines: list[Path] | None = None, only: list[str] | None = None,
        modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """baselines: other source trees whose lookupd is measured too (TCP), interleaved with
    this one — a before/after comparison under the same background load. only: the short
    names (ROWS) of the rows to run; modes: of MODES, the ones to time."""
    env.require_tools()
    wanted = set(only or ROWS)
    c_floor = "c-floor" in wanted and CFloor.build()
    work = env.scratch("maps")
    db_path = work / "mrod.db"
    build_seconds = dataset.build_sync(db_path, domains)
    key_list = dataset.keys(domains, keys)
    keys_file = dataset.write_keys(work / "keys.txt", key_list)
    slices = postmap.split_keys(key_list, clients, work)
    want = expected_output(key_list, domains)
    confdir = postmap.config_dir(work)
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.maps --domains {domains} --keys {keys} --clients {clients} --runs {runs}"
                   + "".join(f" --baseline {tree}" for tree in baselines or [])
                   + (f" --rows {','.join(only)}" if only else "")
                   + (f" --modes {','.join(modes)}" if modes != MODES else ""),
        "domains": domains, "keys": keys, "hits": want.count(b"\n"), "clients": clients, "runs": runs,
        "bulk_add_seconds": round(build_seconds, 2), "lookupd_settings": lookupd_settings or {},
        "load_average_before": env.load_average(), "maps": {},
    }
    cluster = pg.Cluster(work)
    lookupd = Lookupd(work, db_path, extra=lookupd_settings)
    lookupd_unix = Lookupd(work, db_path, unix=True, extra=lookupd_settings)
    floors = [Floor(work), Floor(work, unix=True), UvloopFloor(work)]
    cfloor = CFloor(work)
    others = [Lookupd(work, db_path, extra=lookupd_settings, tree=tree) for tree in baselines or []]
    if "c-floor" in wanted and not c_floor:
        result["c_floor"] = f"skipped: {C_FLOOR_SOURCE} is absent"
    def used(short: str) -> bool:
        return short in wanted and (short != "c-floor" or bool(c_floor))
    candidates: list[tuple[ServerProcess, str]] = [
        (lookupd, "lookupd-tcp"), (lookupd_unix, "lookupd-unix"), (floors[0], "floor-tcp"), (floors[1], "floor-unix"),
        (floors[2], "floor-uvloop"), (cfloor, "c-floor"), *((o, "baseline") for o in others)]
    servers: list[ServerProcess] = [server for server, short in candidates if used(short)]
    try:
        cluster.start()
        cluster.load_domains(dataset.names(domains))
        for process in servers:
            process.start(probe_key=dataset.domain_name(0))
        # (map, the server process behind it — None for Postfix's own sqlite/pgsql clients)
        every: list[tuple[str, postmap.Map, ServerProcess | None]] = [
            ("lookupd-tcp", postmap.socketmap(lookupd.endpoint, LOOKUPD_TCP), lookupd),
            ("lookupd-unix", postmap.socketmap(lookupd_unix.endpoint, LOOKUPD_UNIX), lookupd_unix),
            ("sqlite", postmap.sqlite(work, db_path), None),
            ("pgsql-tcp", postmap.pgsql(work, "127.0.0.1", cluster.port, pg.DBNAME, pg.USER, PGSQL_TCP), None),
            ("pgsql-unix", postmap.pgsql(work, str(cluster.sockdir), cluster.port, pg.DBNAME, pg.USER, PGSQL_UNIX),
             None),
            ("floor-tcp", postmap.socketmap(floors[0].endpoint, FLOOR_TCP), floors[0]),
            ("floor-unix", postmap.socketmap(floors[1].endpoint, FLOOR_UNIX), floors[1]),
            ("floor-uvloop", postmap.socketmap(floors[2].endpoint, FLOOR_UVLOOP), floors[2]),
            ("c-floor", postmap.socketmap(cfloor.endpoint, C_FLOOR), cfloor),
            *(("baseline", postmap.socketmap(o.endpoint, f"lookupd from {o.tree}, TCP 127.0.0.1"), o)
              for o in others),
        ]
        rows = [(m, server) for short, m, server in every if used(short)]
        unchecked = {FLOOR_TCP, FLOOR_UNIX, FLOOR_UVLOOP, C_FLOOR}
        locked = {m.label: 0 for m, _ in rows}

        def server_pids(m: postmap.Map, server: ServerProcess | None) -> list[int]:
            if server is not None:
                return server.pids()
            return [cluster.postmaster_pid] if m.label.startswith("pgsql:") else []

        def attempt(m: postmap.Map, mode: str, server: ServerProcess | None = None) -> tuple[float, bytes]:
            # Postfix's sqlite client sets no busy timeout: when several postmaps open the
            # WAL database at once, one may get "database is locked" (fatal to postmap, a 4xx
            # in Postfix). Such a run is repeated, and counted in the results.
            for tries in range(5):
                try:
                    if mode == "sequential":
                        return postmap.run_once(confdir, m, keys_file)
                    if mode == "pinned":
                        with pinned(server_pids(m, server), PIN_CPUS):
                            return postmap.run_once(confdir, m, keys_file, cpus=PIN_CPUS)
                    seconds, outs = postmap.run_parallel(confdir, m, slices)
                    return seconds, b"".join(outs)
                except postmap.MapError as exc:
                    if "database is locked" not in str(exc) or tries == 4:
                        raise
                    locked[m.label] += 1
            raise AssertionError("unreachable")

        # A benchmark that answers wrong is worthless: check every map first (this also warms
        # the caches of all of them alike).
        for m, _server in rows:
            if m.label in unchecked:
                continue
            for mode in ("sequential", "concurrent"):
                if attempt(m, mode)[1] != want:
                    raise RuntimeError(f"{m.label} answered differently from the expected hits ({mode})")
        timing: dict[str, dict[str, list[float]]] = {m.label: {mode: [] for mode in MODES} for m, _ in rows}
        cpu: dict[str, dict[str, list[float]]] = {m.label: {mode: [] for mode in MODES} for m, _ in rows}
        for _ in range(runs):
            for mode in modes:
                for m, server in rows:   # interleaved, so background load hits every map alike
                    cpu_before = server.cpu_seconds() if server else 0.0
                    seconds, out = attempt(m, mode, server)
                    if server:
                        cpu[m.label][mode].append(server.cpu_seconds() - cpu_before)
                    if out != want and m.label not in unchecked:
                        raise RuntimeError(f"{m.label} answered differently in a timed run")
                    timing[m.label][mode].append(seconds)
        for m, server in rows:
            row: dict[str, Any] = {"spec": m.spec.replace(str(work), "$WORK")}
            for mode in modes:
                median = env.median(timing[m.label][mode])
                row[f"{mode}_seconds"] = [round(x, 3) for x in timing[m.label][mode]]
                row[f"{mode}_lookups_per_s"] = round(keys / median)
                if mode != "concurrent":
                    row[f"{mode}_us_per_lookup"] = round(median / keys * 1e6, 1)
            result["maps"][m.label] = row
            if locked[m.label]:
                result["maps"][m.label]["runs_repeated_database_locked"] = locked[m.label]
            if server:
                # CPU the server process used per lookup (user + system, from /proc).
                result["maps"][m.label]["server_cpu_us_per_lookup"] = {
                    mode: round(env.median(v) / keys * 1e6, 1) for mode, v in cpu[m.label].items() if v}
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
    """Issue 23's targets, from the rows that were run (over TCP, as the C floor listens):
    CPU per lookup at 16 clients <= 12 us; 16 clients >= 0.7x the C floor's lookups/s and
    >= 1.5x pgsql:'s; sequential time <= 1.25x the C floor's."""
    maps = result["maps"]
    ours, floor, pgsql = maps.get(LOOKUPD_TCP), maps.get(C_FLOOR), maps.get(PGSQL_TCP)
    found: dict[str, Any] = {}

    def note(name: str, value: float, target: float, at_most: bool = False) -> None:
        found[name] = {"value": round(value, 2), "target": target,
                       "met": value <= target if at_most else value >= target}

    if ours is None:
        return found
    cpu = ours.get("server_cpu_us_per_lookup", {}).get("concurrent")
    if cpu is not None:
        note("cpu_us_per_lookup_16_clients", cpu, 12.0, at_most=True)
    if "concurrent_lookups_per_s" in ours:
        if floor is not None:
            note("16_clients_vs_c_floor", ours["concurrent_lookups_per_s"] / floor["concurrent_lookups_per_s"], 0.7)
        if pgsql is not None:
            note("16_clients_vs_pgsql", ours["concurrent_lookups_per_s"] / pgsql["concurrent_lookups_per_s"], 1.5)
    for mode in ("sequential", "pinned"):
        if floor is not None and f"{mode}_lookups_per_s" in ours:
            # time ratio: lookupd's time for the keys over the floor's
            note(f"{mode}_time_vs_c_floor", floor[f"{mode}_lookups_per_s"] / ours[f"{mode}_lookups_per_s"], 1.25,
                 at_most=True)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--baseline", action="append", type=Path, default=[], metavar="TREE",
                    help="also measure the lookupd of this source tree (repeatable)")
    ap.add_argument("--rows", help=f"comma-separated rows to run, of: {', '.join(ROWS)} (default: all)")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of: {', '.join(MODES)}")
    args = ap.parse_args()
    only = args.rows.split(",") if args.rows else None
    modes = tuple(args.modes.split(","))
    for bad in [r for r in only or [] if r not in ROWS] + [m for m in modes if m not in MODES]:
        ap.error(f"unknown row or mode {bad!r}")
    print(json.dumps(run(args.domains, args.keys, args.clients, args.runs, None, args.keep,
                         [p.resolve() for p in args.baseline], only, modes), indent=2))


if __name__ == "__main__":
    main()
