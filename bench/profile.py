"""Where lookupd's CPU goes when Postfix asks it, by the kernel's profiler: ``perf record``
on the real lookupd process (subprocess, socketmap on a free 127.0.0.1 port) while
``postmap -q -`` runs — sequentially, then 16 clients at once — and ``perf report`` by
shared object (Python interpreter, kernel, SQLite, libc) and, for the kernel, by symbol.

Needs ``perf`` (Debian: linux-perf); without it this benchmark says so and reports nothing.

    .venv/bin/python -m bench.profile [--domains 100000] [--keys 100000] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from . import dataset, env, postmap
from .lookupd_proc import Lookupd

_LINE = re.compile(r"^\s+([\d.]+)%\s+(.+?)\s*$")


def _report(data: Path, sort: str, limit: int) -> list[tuple[str, float]]:
    out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
                          "-g", "none"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            name = re.sub(r"\s+\[[.k]\]\s+|\s{2,}", " ", m.group(2)).strip()
            rows.append((name, float(m.group(1))))
    return rows[:limit]


def _profiled(lookupd: Lookupd, data: Path, action: Any) -> float:
    """Run ``action`` under perf record on lookupd; returns lookupd's CPU seconds for it."""
    assert lookupd.proc is not None, "lookupd is not started"
    rec = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(data), "-p", str(lookupd.proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)   # perf attaches
    before = lookupd.cpu_seconds()
    try:
        action()
    finally:
        spent = lookupd.cpu_seconds() - before
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    return spent


def run(domains: int = 100_000, keys: int = 100_000, clients: int = 16) -> dict[str, Any]:
    if shutil.which("perf") is None:
        return {"skipped": "perf is not installed (apt-get install linux-perf)"}
    work = env.scratch("profile")
    db_path = work / "mrod.db"
    dataset.build_sync(db_path, domains)
    key_list = dataset.keys(domains, keys)
    keys_file = dataset.write_keys(work / "keys.txt", key_list)
    slices = postmap.split_keys(key_list, clients, work)
    confdir = postmap.config_dir(work)
    result: dict[str, Any] = {
        "command": f".venv/bin/python -m bench.profile --domains {domains} --keys {keys} --clients {clients}",
        "load_average": env.load_average()}
    try:
        with Lookupd(work, db_path) as lookupd:
            lookupd.start(probe_key=dataset.domain_name(0))
            m = postmap.socketmap(lookupd.endpoint, "lookupd")
            for mode, action in (("sequential", lambda: postmap.run_once(confdir, m, keys_file)),
                                 ("concurrent", lambda: postmap.run_parallel(confdir, m, slices))):
                data = work / f"perf-{mode}.data"
                cpu = _profiled(lookupd, data, action)
                result[mode] = {
                    "cpu_us_per_lookup": round(cpu / keys * 1e6, 1),
                    "by_object_percent": dict(_report(data, "dso", 6)),
                    "top_symbols_percent": dict(_report(data, "dso,sym", 12)),
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    print(json.dumps(run(args.domains, args.keys, args.clients), indent=2))


if __name__ == "__main__":
    main()
