"""Every benchmark in one run (``make bench``): machine facts, bench.maps, bench.visibility,
bench.workers, bench.profile, bench.breakdown, bench.scale and bench.hotpath (the last two
share one 1M-domain database), then bench.panel_list, bench.cli_import and bench.bind_import
(each in its own process, writing its own JSON under bench/out/ and printing its table).
Writes ``bench/out/results.json`` and ``bench/out/report.md`` and prints the report. About
8 minutes on 2 vCPUs; ``--quick`` is a smaller smoke run (its figures are not the reported ones;
it writes ``results-quick.json`` / ``report-quick.md``).

    .venv/bin/python -m bench.all [--quick]
        [--only maps,visibility,workers,profile,breakdown,scale,hotpath,panel_list,cli_import,bind_import]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time

from . import breakdown, dataset, env, hotpath, maps, profile, report, scale, visibility, workers

ALL = ("maps", "visibility", "scale", "hotpath", "breakdown", "workers", "profile",
       "panel_list", "cli_import", "bind_import")
# Benchmarks run as their own commands: name -> (full arguments, --quick arguments).
SEPARATE = {
    "panel_list": (["--domains", "100000", "--repeats", "30"], ["--domains", "20000", "--repeats", "3"]),
    "cli_import": (["--lines", "100000", "--repeat", "3"], ["--lines", "20000", "--repeat", "1"]),
    "bind_import": (["--zones", "10000", "--repeat", "3"], ["--zones", "1000", "--repeat", "1"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one run: checks the benchmarks work")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated subset of " + ", ".join(ALL))
    args = ap.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    env.require_tools()
    q = args.quick
    big = 100_000 if q else 1_000_000
    results: dict = {"machine": env.machine(), "quick": q}
    started = time.perf_counter()
    if "maps" in only:
        results["maps"] = maps.run(domains=20_000 if q else 100_000, keys=20_000 if q else 100_000,
                                   runs=1 if q else 3)
    if "visibility" in only:
        results["visibility"] = visibility.run(domains=20_000 if q else 100_000, iterations=50 if q else 300,
                                               cli_iterations=2 if q else 10)
    if "workers" in only:
        results["workers"] = workers.run(domains=20_000 if q else 100_000, keys=20_000 if q else 100_000,
                                         max_workers=2 if q else 3, runs=1 if q else 3)
    if "profile" in only:
        results["profile"] = profile.run(domains=20_000 if q else 100_000, keys=20_000 if q else 100_000)
    if "breakdown" in only:
        results["breakdown"] = breakdown.run(domains=20_000 if q else 100_000, keys=5_000 if q else 20_000,
                                             repeats=2 if q else 5)
    if "scale" in only or "hotpath" in only:
        work = env.scratch("big")
        try:
            db_path = work / "mrod.db"
            seconds = dataset.build_sync(db_path, big)
            if "scale" in only:
                results["scale"] = scale.run(domains=big, starts=2 if q else 5, built=(db_path, seconds))
            if "hotpath" in only:
                results["hotpath"] = hotpath.run(domains=big, queries=5_000 if q else 20_000,
                                                 repeats=2 if q else 5, db_path=db_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for name, (full, quick) in SEPARATE.items():
        if name in only:
            subprocess.run([env.PYTHON, "-m", f"bench.{name}", *(quick if q else full)], cwd=env.ROOT, check=True)
    results["total_seconds"] = round(time.perf_counter() - started)
    env.OUT.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if q else ""   # a smoke run never overwrites the reported figures
    (env.OUT / f"results{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report.render(results)
    (env.OUT / f"report{suffix}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
