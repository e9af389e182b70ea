"""Why added domains are journaled by mrod's write paths and not by an INSERT trigger (issue 10):
CPU seconds to insert ``--rows`` domains in one transaction (what ``mrod domain import`` runs)
into the real schema, three ways — no trigger (the journal gets one 'all' row, as mrod does),
an AFTER INSERT trigger writing one change row per domain, and the same trigger switched off
by a WHEN clause on a one-row flag table (what a "mute during bulk imports" design would cost).
Process CPU time, not wall time (the machine is shared); median of ``--repeat`` rounds.

    .venv/bin/python -m bench.journal_cost [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import time
from pathlib import Path

from mrod.infra import db

from . import env

TRIGGER = ("CREATE TRIGGER bench_domain_insert AFTER INSERT ON domain {when} BEGIN"
           " INSERT INTO change (entity, key) VALUES ('domain', NEW.name); END")


def one(work: Path, way: str, rows: int) -> float:
    path = work / f"{way}.db"
    for suffix in ("", "-wal", "-shm"):
        (work / f"{way}.db{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for _version, _name, sql in db.migrations():
        for statement in db._split_sql(sql):
            conn.execute(statement)
    conn.execute("INSERT INTO relay (name, host, created_at, updated_at) VALUES ('p', 'h', 'x', 'x')")
    if way == "row trigger":
        conn.execute(TRIGGER.format(when=""))
    elif way == "muted trigger":
        conn.execute("CREATE TABLE bench_mute (muted INTEGER NOT NULL)")
        conn.execute("INSERT INTO bench_mute VALUES (1)")
        conn.execute(TRIGGER.format(when="WHEN NOT (SELECT muted FROM bench_mute)"))
    data = [(f"d{i}.journal-bench.example", 1, "relay", 1, 0, "accept_all", "manual", None, "x", "x")
            for i in range(rows)]
    started = time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO domain (name, relay_id, route, enabled, include_subdomains, recipients,"
                     " source, owner_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data)
    if way == "one 'all' row":
        conn.execute("INSERT INTO change (entity) VALUES ('all')")
    conn.execute("COMMIT")
    seconds = time.process_time() - started
    conn.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = env.scratch("journal-cost")
    ways = ("one 'all' row", "row trigger", "muted trigger")
    try:
        found: dict[str, list[float]] = {w: [] for w in ways}
        for _ in range(args.repeat):
            for way in ways:     # interleaved
                found[way].append(one(work, way, args.rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = env.median(found[ways[0]])
    print(json.dumps({"rows": args.rows, "cpu_seconds": {w: [round(x, 2) for x in v] for w, v in found.items()}},
                     indent=2))
    print("| way | CPU s (median) | vs one 'all' row |\n|---|---:|---:|")
    for way in ways:
        median = env.median(found[way])
        print(f"| {way} | {median:.2f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
