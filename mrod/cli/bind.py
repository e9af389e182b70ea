"""``mrod import-bind [--dry-run] [--json] [--history]``: the BIND importer from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any


from mrod.infra.dbapi import Connection
from mrod import bindimport
from mrod.entities.audit import Actor
from mrod.bindimport import runs
from mrod.infra.config import Config
from mrod.cli import common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import-bind", help="import the zones BIND serves as relay domains ([bind] in the config)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (add/update/disable/delete), write nothing")
    p.add_argument("--json", action="store_true", help="the result as JSON")
    p.add_argument("--history", action="store_true", help="list the recent runs instead of running")
    p.add_argument("--limit", type=int, default=20, help="runs listed by --history (default 20)")
    p.set_defaults(func=cmd_import_bind)


def cmd_import_bind(args: argparse.Namespace, cfg: Config) -> int:
    if args.history:
        return _history(args, cfg)

    async def work(conn: Connection) -> bindimport.Result:
        return await bindimport.run(conn, cfg, Actor.cli(), dry_run=args.dry_run)

    result = common.with_db(cfg, work)
    if args.json:
        common.print_json(_as_json(result))
    else:
        _print(result)
    return 0


def _as_json(result: bindimport.Result) -> dict[str, Any]:
    return {
        "dry_run": result.dry_run, "run_id": result.run_id, "duration_ms": result.duration_ms,
        "counts": result.counts,
        "actions": [{"action": a.kind, "domain": a.name, "why": a.why,
                     "changes": {k: v for k, v in a.spec.items()}} for a in result.plan.actions],
        "problems": [{"domain": n, "message": m} for n, m in result.plan.problems],
        "warnings": result.discovery.warnings,
        "notes": [{"domain": n, "message": m} for n, m in result.plan.notes],
        "read": result.discovery.readers,
    }


def _print(result: bindimport.Result) -> None:
    out = sys.stdout
    for reader in result.discovery.readers:
        out.write(f"read     {reader}\n")
    width = max([len(a.name) for a in result.plan.actions] + [10])
    for action in result.plan.actions:
        out.write(f"{action.kind:<8} {action.name:<{width}}  {action.why}\n")
    for name, message in result.plan.problems:
        out.write(f"problem  {name:<{width}}  {message}\n")
    for message in result.discovery.warnings:
        out.write(f"warning  {message}\n")
    for name, message in result.plan.notes:
        out.write(f"note     {name:<{width}}  {message}\n")
    summary = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    seconds = result.duration_ms / 1000
    if result.dry_run:
        out.write(f"dry run ({seconds:.2f}s): {summary}; nothing was written\n")
    else:
        out.write(f"run #{result.run_id} ({seconds:.2f}s): {summary}\n")


def _history(args: argparse.Namespace, cfg: Config) -> int:
    items = common.with_db(cfg, lambda conn: runs.recent(conn, limit=max(1, args.limit)))
    if args.json:
        common.print_json([r.as_dict() for r in items])
        return 0
    common.print_table(
        ["run", "started", "status", "by", "seconds", "found", "added", "updated", "disabled", "deleted",
         "problems", "error"],
        [(r.id, r.started_at, r.status, r.remote or r.actor, f"{r.duration_ms / 1000:.2f}",
          r.counts["discovered"], r.counts["added"], r.counts["updated"], r.counts["disabled"],
          r.counts["deleted"], r.counts["problems"], r.error or "") for r in items],
    )
    return 0
