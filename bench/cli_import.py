"""``mrod domain import`` of a 100k-line file, as an operator runs it: the real ``mrod``
command in a subprocess on a fresh database, one transaction for the whole file. Reports
wall time and the peak RSS of the process (from wait4's rusage), median of ``--repeat`` runs,
and the same for a re-import with ``--skip-existing`` (every line already there).

    .venv/bin/python -m bench.cli_import [--lines 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import env

MROD = [env.PYTHON, "-m", "mrod"]


def _run(args: list[str], config: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one `mrod` command; fails loudly if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen([*MROD, "--config", str(config), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=env.ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"mrod {' '.join(args)} failed ({proc.returncode}): {stderr.strip()}")
    return seconds, usage.ru_maxrss


def one_round(work: Path, lines: int) -> dict[str, float]:
    db_path = work / "mrod.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    config = work / "mrod.toml"
    config.write_text(f'[database]\npath = "{db_path}"\n')
    _run(["init"], config)
    _run(["relay", "add", "primary", "--host", "mx1.example.net"], config)
    listing = work / "domains.txt"
    seconds, rss = _run(["domain", "import", str(listing), "--relay", "primary"], config)
    again, again_rss = _run(["domain", "import", str(listing), "--relay", "primary", "--skip-existing"], config)
    return {"import_seconds": seconds, "import_peak_rss_mib": rss / 1024,
            "reimport_skip_existing_seconds": again, "reimport_peak_rss_mib": again_rss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = env.scratch("cli-import")
    try:
        (work / "domains.txt").write_text("".join(f"d{i}.import-bench.example\n" for i in range(args.lines)))
        rounds = [one_round(work, args.lines) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {key: env.median([r[key] for r in rounds]) for key in rounds[0]}
    result = {"lines": args.lines, "repeat": args.repeat, "machine": env.machine(),
              "median": medians, "rounds": rounds}
    env.OUT.mkdir(parents=True, exist_ok=True)
    (env.OUT / "cli_import.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.lines} lines, median of {args.repeat}")
    print("| figure | value |\n|---|---:|")
    for key, value in medians.items():
        print(f"| {key} | {value:.2f} |")


if __name__ == "__main__":
    main()
