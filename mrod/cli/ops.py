"""``mrod queue``, ``mrod check`` and ``mrod health``: operating a backup MX from the shell.

Exit status: 0 fine; 1 the queue could not be read or a flush failed, a DNS check found an
error, or (``mrod health``) a relay is down or, on PostgreSQL, lookupd's routing snapshot is
stale (this node's; with --all-nodes any node's).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


from mrod.infra.dbapi import Connection
from mrod.operations import (certchecks, checks, health, nodereports, postfixcache, queueflush, queueread,
                             queuereading, queuestats, queuetimes, syncstatus)
from mrod.infra import db, names
from mrod.entities import domains
from mrod.infra import config as configmod
from mrod.infra.config import Config
from mrod.infra.enums import CHECK_STATUSES
from mrod.infra.errors import DatabaseNotReady, InvalidInput, NotFound
from mrod.operations.queueparse import DomainQueue
from mrod.cli import common, outagehistory, queuecmd


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("queue", help="mail waiting in Postfix's queue, per domain; flush it")
    p.add_argument("--domain", metavar="D", help="only this domain (with its subdomains if it includes them)")
    p.add_argument("--flush", action="store_true",
                   help="deliver now: the domain's queued mail (postqueue -s), or everything (postqueue -f)")
    p.add_argument("--all-nodes", action="store_true",
                   help="every node's last stored reading (several nodes, one database) instead of this"
                        " node's queue read now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue)
    queuecmd.register(p)

    p = sub.add_parser("check", help="check the DNS set-up of every domain (or one): MX, preference, loops")
    p.add_argument("domain", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("health", help="the primaries' health as the probes saw it")
    p.add_argument("--probe", action="store_true",
                   help="probe every relay now (as `mrod serve` does: recorded, audited, flushes on up)")
    p.add_argument("--all-nodes", action="store_true",
                   help="every node's view (several nodes, one database); default: this node's ([node] name)")
    p.add_argument("--history", nargs="?", const="", metavar="RELAY|DOMAIN",
                   help="outages (start, end, duration, mail queued, flush time) and availability over 7 and 30"
                        " days: of every relay, one relay, or a domain's relay")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)


# -- queue ------------------------------------------------------------------------------------------


def cmd_queue(args: argparse.Namespace, cfg: Config) -> int:
    target = names.domain(args.domain, min_labels=1) if args.domain else None
    if args.all_nodes:
        if args.flush:
            raise InvalidInput("--all-nodes", "--flush acts on this node's queue only; leave it out")
        return _all_nodes(args, cfg, target)
    return asyncio.run(_queue(args, cfg, target))


def _all_nodes(args: argparse.Namespace, cfg: Config, target: str | None) -> int:
    """Every node's stored reading (what `mrod serve` last read on each), largest first; on
    stderr, each node whose last reading failed, and whether any node has read its queue at
    all — an empty list is "nothing waits" only when the readings worked."""
    async def work(conn: Connection) -> tuple[list[dict[str, Any]], dict[str, queuereading.Reading]]:
        return await queuestats.stats(conn), await queuereading.readings(conn)

    stored, readings = common.with_db(cfg, work)
    rows = [r for r in stored if target is None or r["domain"] == target]
    for line in _unread(readings, cfg):
        print(line, file=sys.stderr)
    if args.json:
        common.print_json([{k: v for k, v in r.items() if k != "owner_id"} for r in rows])
    elif rows:
        common.print_table(["node", "domain", "messages", "bytes", "oldest", "last reason", "read at"],
                           [(r["node"], names.to_unicode(r["domain"]), r["messages"], r["bytes"],
                             queuetimes.age(r["oldest"]), (r["last_reason"] or "")[:60], r["updated_at"])
                            for r in rows])
    elif readings:
        print("no node has stored a queue reading with mail waiting")
    return 0


def _unread(readings: dict[str, queuereading.Reading], cfg: Config) -> list[str]:
    if not readings:
        return [f"mrod: no node has read its queue yet (mrod serve reads it every {cfg.queue.interval:g} s):"
                " the figures are not known"]
    return [f"mrod: node {r.node}: the queue could not be read at {r.failed_at}: {r.error}"
            f" ({f'figures from the reading at {r.read_at}' if r.read_at else 'it has never been read'})"
            for r in readings.values() if r.failed]


async def _row_id(cfg: Config, name: str) -> int | None:
    try:
        async with db.opened(cfg.database) as conn:
            return (await domains.get(conn, name)).id
    except (DatabaseNotReady, NotFound):
        return None      # not one of mrod's domains: shown as a recipient domain only


async def _queue(args: argparse.Namespace, cfg: Config, target: str | None) -> int:
    report = await queueread.read(cfg)
    row_id = await _row_id(cfg, target) if target else None
    if target is None:
        shown = sorted(report.rows.values(), key=lambda q: (-q.messages, q.name))
        ours = {d for i in report.rows for d in report.domains_of(i)}
        others = [q for d, q in report.domains.items() if d not in ours]
    else:
        wanted = set(report.domains_of(row_id)) if row_id is not None else set()
        wanted.add(target)
        shown = sorted((q for d, q in report.domains.items() if d in wanted), key=lambda q: q.name)
        others = []
    results: list[queueflush.FlushResult] = []
    if args.flush:
        if target is None:
            results = [await queueflush.flush_all(cfg)]
        else:
            results = await queueflush.flush(cfg, {target, *(q.name for q in shown)})
    if args.json:
        data: dict[str, Any] = {
            "messages": report.messages, "bytes": report.bytes, "queues": report.queues,
            "bad_lines": report.bad_lines, "domains": [q.as_dict() for q in shown],
            "other_domains": [q.as_dict() for q in sorted(others, key=lambda q: q.name)],
        }
        if args.flush:
            data["flushed"] = [r.__dict__ for r in results]
        common.print_json(data)
    else:
        _print_queue(report, shown, others, target)
        for r in results:
            print(f"flush {r.domain}: {'ok, ' if r.ok else 'FAILED: '}{r.detail}")
    return 0 if all(r.ok for r in results) else 1


def _print_queue(report: queueread.QueueReport, shown: list[DomainQueue], others: list[DomainQueue],
                 target: str | None) -> None:
    queues = ", ".join(f"{n} {q}" for q, n in sorted(report.queues.items())) or "empty"
    print(f"{report.messages} message(s), {report.bytes} bytes queued ({queues})")
    if report.bad_lines:
        print(f"warning: {report.bad_lines} line(s) of postqueue output were not queue entries")
    if shown:
        common.print_table(
            ["domain", "messages", "bytes", "recipients", "oldest", "last reason"],
            [(names.to_unicode(q.name), q.messages, q.bytes, q.recipients, queuetimes.age(q.oldest),
              (q.last_reason or "")[:70]) for q in shown])
    elif target:
        print(f"nothing queued for {target}")
    if others:
        print(f"and {sum(q.messages for q in others)} message(s) for {len(others)} domain(s) that are not"
              " mrod's (bounces, local mail)")


# -- check ------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> tuple[list[checks.DomainCheck], list[dict[str, Any]]]:
        name = None
        if args.domain:
            name = (await domains.get(conn, args.domain)).name   # NotFound: a clear error
        results = await checks.run(cfg, conn, name)
        return results, [h for h in await certchecks.host_results(conn) if h["node"] == cfg.node.name]

    results, host = common.with_db(cfg, work)
    own = [f for h in host for f in h["findings"]]
    if args.json:
        common.print_json([r.as_dict() for r in results])
    else:
        print(configmod.describe(cfg))
        for f in own:       # this host itself (its certificate), before the domains
            print(f"this host: {f['level']}: {f['message']}")
            print(f"    fix: {f['fix']}")
        for r in results:
            print(f"{names.to_unicode(r.domain)}: {r.status}")
            for f in r.findings:
                print(f"  {f.level}: {f.message}")
                print(f"    fix: {f.fix}")
        counts: dict[str, int] = {s: sum(1 for r in results if r.status == s) for s in CHECK_STATUSES}
        print(f"{len(results)} domain(s): {counts['ok']} ok, {counts['warning']} warning, {counts['error']} error")
    return 1 if any(r.status == "error" for r in results) or any(f["level"] == "error" for f in own) else 0


# -- health -----------------------------------------------------------------------------------------


def cmd_health(args: argparse.Namespace, cfg: Config) -> int:
    if args.history is not None:
        return outagehistory.show(args, cfg)
    # The JSON on stdout stays the list of relays; every other finding goes to stderr then.
    notes = sys.stderr if args.json else sys.stdout
    live = _lookupd_status(cfg, notes)    # read from a file, before the database: told in an outage too

    async def work(conn: Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = await health.status(conn, node=None if args.all_nodes else cfg.node.name)
        return rows, await nodereports.rows(conn) if args.all_nodes else []

    if args.probe:
        transitions = asyncio.run(health.HealthMonitor(cfg).run_once())
        for t in transitions:
            print(f"relay {t.relay}: {t.before} -> {t.after} ({t.detail})")
    rows, stored = common.with_db(cfg, work)
    cached = _cached_failures(cfg)
    if args.json:
        common.print_json(rows)
    else:
        common.print_table(
            ["node", "relay", "nexthop", "state", "since", "last probe", "latency", "starttls", "detail"],
            [(r["node"] or "", r["name"], f"{r['protocol']}:[{r['host']}]:{r['port']}", r["state"], r["since"] or "",
              r["last_probe_at"] or "never", "" if r["last_latency_ms"] is None else f"{r['last_latency_ms']:g} ms",
              {None: "", True: "yes", False: "no"}[r["starttls"]], (r["last_detail"] or "")[:60]) for r in rows])
    if cached is not None:
        print(f"postfix: {cached.message()}", file=notes)
    nodes = nodereports.view(stored, cfg.node.name, live) if args.all_nodes else []
    if nodes:
        _print_nodes(nodes, notes)
    stale = (live is not None and live.verdict == syncstatus.STALE) or any(n.stale for n in nodes)
    return 1 if stale or any(r["state"] == "down" for r in rows) else 0


def _lookupd_status(cfg: Config, out: Any) -> syncstatus.SyncStatus | None:
    """This node's lookupd sync status, printed (PostgreSQL only; SQLite has no snapshot to age)."""
    status = syncstatus.read_for(cfg)
    if status is None:
        return None
    print(f"lookupd: {status.line()}", file=out, flush=True)
    return status


def _print_nodes(nodes: list[nodereports.NodeView], out: Any) -> None:
    """Every node's lookupd, as each last reported it (this node: from its file)."""
    if out is sys.stdout:
        print()
        common.print_table(
            ["node", "lookupd last sync", "database", "reported at", "status"],
            [(n.node, n.age_text(), "reachable" if n.connected else "unreachable",
              "live" if n.live else syncstatus.when(n.reported_at), "STALE" if n.stale else "ok") for n in nodes])
    for n in nodes:
        if n.stale or out is not sys.stdout:
            print(n.warning() if n.stale else f"node {n.node}: lookupd last sync {n.age_text()}", file=out)


def _cached_failures(cfg: Config) -> postfixcache.Finding | None:
    """Lookup failures Postfix's smtpd may still cache after an outage; its log unreadable: none."""
    try:
        return postfixcache.detect(cfg)
    except OSError:
        return None
