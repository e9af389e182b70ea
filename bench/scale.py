"""lookupd with 1M domains: start time and resident memory (targets: <= 5 s, <= 300 MB).

The database is built with ``mrod.entities.domainimport.bulk_add`` (ten imports of 100k, what ``mrod domain
import`` runs). Start time: from spawning ``python -m mrod --config F lookupd`` until its
socketmap (free 127.0.0.1 port) answers the first lookup with OK — median of ``--starts``
starts, the database file warm in the page cache (as on a running server; it is not dropped
because the machine is shared). For scale, the same is given for a bare ``python -c pass`` and
for importing lookupd. Memory: VmRSS from /proc after warm-up — ``--keys`` lookups through
``postmap -q -`` (half hits) and then 16 clients at once.

    .venv/bin/python -m bench.scale [--domains 1000000] [--keys 100000] [--starts 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from . import dataset, env, postmap
from .lookupd_proc import Lookupd


def _spawn_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([env.PYTHON, *args], check=True, cwd=env.ROOT, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(env.median(times), 3)


def run(domains: int = 1_000_000, keys: int = 100_000, starts: int = 5,
        built: tuple[Path, float] | None = None) -> dict[str, Any]:
    """built: (database, seconds bulk_add took) made by the caller with dataset.build."""
    env.require_tools()
    work = env.scratch("scale")
    if built is None:
        db_path = work / "mrod.db"
        build_seconds = dataset.build_sync(db_path, domains)
    else:
        db_path, build_seconds = built
    key_list = dataset.keys(domains, keys)
    keys_file = dataset.write_keys(work / "keys.txt", key_list)
    slices = postmap.split_keys(key_list, 16, work)
    confdir = postmap.config_dir(work)
    want_hits = keys // 2
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.scale --domains {domains} --keys {keys} --starts {starts}",
        "domains": domains, "bulk_add_seconds": round(build_seconds, 1),
        "database_mib": round(db_path.stat().st_size / 2**20, 1),
        "python_startup_seconds": _spawn_seconds(["-c", "pass"], starts),
        "import_lookupd_seconds": _spawn_seconds(["-c", "import mrod.cli, lookupd.daemon"], starts),
        "load_average_before": env.load_average(),
    }
    start_times, loaded_times = [], []
    try:
        for i in range(starts):
            (work / "lookupd.log").unlink(missing_ok=True)
            with Lookupd(work, db_path, log_level="INFO") as lookupd:
                start_times.append(lookupd.start(probe_key=dataset.domain_name(domains - 1 - i)))
                # The first answers come from SQLite while the snapshot loads (issue 10).
                loaded_times.append(_snapshot_loaded(lookupd))
                if i < starts - 1:
                    continue
                result["rss_after_start_kib"] = lookupd.rss_kib()
                m = postmap.socketmap(lookupd.endpoint, "lookupd")
                _seconds, out = postmap.run_once(confdir, m, keys_file)
                hits = out.count(b"\n")
                if hits != want_hits:
                    raise RuntimeError(f"expected {want_hits} hits, got {hits}")
                result["rss_after_sequential_kib"] = lookupd.rss_kib()
                _seconds, outs = postmap.run_parallel(confdir, m, slices)
                if sum(o.count(b"\n") for o in outs) != want_hits:
                    raise RuntimeError("wrong number of hits with 16 clients")
                result["rss_after_16_clients_kib"] = lookupd.rss_kib()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rss_mb = max(result["rss_after_sequential_kib"], result["rss_after_16_clients_kib"]) * 1024 / 1e6
    result["start_seconds"] = [round(s, 3) for s in start_times]
    result["start_seconds_median"] = round(env.median(start_times), 3)
    result["snapshot_loaded_seconds"] = [round(s, 2) for s in loaded_times]
    result["snapshot_loaded_seconds_median"] = round(env.median(loaded_times), 2)
    result["targets"] = {
        "rss": {"mb": round(rss_mb, 1), "target_mb": 300, "met": rss_mb <= 300},
        "start": {"seconds": result["start_seconds_median"], "target_seconds": 5,
                  "met": result["start_seconds_median"] <= 5},
    }
    return result


def _snapshot_loaded(lookupd: Lookupd, timeout: float = 120.0) -> float:
    """Seconds from spawning lookupd until it logged its snapshot loaded (then lookups are
    answered from memory)."""
    assert lookupd.start_seconds is not None
    spawned = time.perf_counter() - lookupd.start_seconds
    deadline = time.perf_counter() + timeout
    while "routing snapshot loaded" not in lookupd.log_text():
        if time.perf_counter() > deadline:
            raise RuntimeError("lookupd did not load its snapshot")
        time.sleep(0.02)
    return time.perf_counter() - spawned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--database", type=Path, help="an existing database of --domains domains built by "
                    "bench.dataset (kept), instead of building one")
    args = ap.parse_args()
    built = (args.database.resolve(), 0.0) if args.database else None
    print(json.dumps(run(args.domains, args.keys, args.starts, built), indent=2))


if __name__ == "__main__":
    main()
