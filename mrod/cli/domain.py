"""``mrod domain add|set|rm|list|show|import``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


from mrod.infra.dbapi import Connection
from mrod.entities import domainimport, domains
from mrod.answers import routing
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.answers import oneshot
from mrod.cli import common, domainbulk, holds
from mrod.infra import durations, enums


def _route_options(p: argparse.ArgumentParser) -> None:
    route = p.add_mutually_exclusive_group(required=False)
    route.add_argument("--relay", metavar="NAME", help="deliver through this relay")
    route.add_argument("--host", metavar="HOST", help="deliver to this host (per-domain override)")
    route.add_argument("--mx", action="store_true", help="deliver by the domain's own MX records")
    p.add_argument("--port", help="port for --host (default 25)")
    p.add_argument("--protocol", choices=enums.PROTOCOLS, help="protocol for --host (default smtp)")
    p.add_argument("--tls", choices=enums.TLS_LEVELS, help="TLS requirement for --host or --mx")
    p.add_argument("--recipients", choices=enums.RECIPIENT_POLICIES,
                   help="accept_all (default), listed (only `mrod recipient` addresses) or verify"
                        " (asked of the primary by the policy service)")
    # Operating a backup MX (the policy service): see docs/operations.md.
    p.add_argument("--when-down", dest="verify_when_down", choices=enums.VERIFY_WHEN_DOWN,
                   help="recipients=verify: unknown recipients while the primary is down are accepted or deferred")
    p.add_argument("--when-primary-up", dest="when_primary_up", choices=enums.WHEN_PRIMARY_UP,
                   help="while the primary is up: accept its mail, defer it (4xx: senders retry the primary),"
                        " or inherit the relay's choice (default)")
    p.add_argument("--quota-messages", metavar="N", help="defer new mail while N messages wait (0: no limit,"
                   " 'default': [policy] default_quota_messages)")
    p.add_argument("--quota-bytes", metavar="N", help="defer new mail while N bytes wait (0, or 'default')")
    p.add_argument("--queue-lifetime", metavar="DURATION", help="expire (bounce) the domain's mail after it waited"
                   " this long, e.g. 3d or 12h ('default': Postfix's maximal_queue_lifetime)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("domain", help="relayed domains")
    ds = p.add_subparsers(dest="domain_command", metavar="ACTION", required=True)

    a = ds.add_parser("add", help="add a domain")
    a.add_argument("domain")
    _route_options(a)
    a.add_argument("--subdomains", action="store_true", help="relay its subdomains too")
    a.add_argument("--disabled", action="store_true", help="add it disabled")
    a.set_defaults(func=cmd_add)

    s = ds.add_parser("set", help="change one domain, or many at once (one transaction)")
    s.add_argument("domains", nargs="*", metavar="DOMAIN", help="one or more domains; '-' reads names from stdin")
    s.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help=domainbulk.FILTER_HELP)
    _route_options(s)
    common.bool_flag(s, "subdomains", "relay its subdomains too", "only the domain itself", dest="subdomains")
    state = s.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_const", const=True, help="relay it again")
    state.add_argument("--disable", dest="enabled", action="store_const", const=False,
                       help="stop relaying it (mail already queued for it still reaches its primary)")
    pause = s.add_mutually_exclusive_group()
    pause.add_argument("--pause", metavar="REASON", nargs="?", const="",
                       help="defer new mail for the domain (DEFER_IF_PERMIT, with the reason)")
    pause.add_argument("--unpause", action="store_true", help="accept its mail again")
    s.add_argument("--recipient-source", metavar="NAME", help="sync its recipients from this source"
                   " ('none': from no source, even its relay's; 'inherit': its relay's, the default)")
    s.set_defaults(enabled=None, func=cmd_set)

    r = ds.add_parser("rm", help="remove domains")
    r.add_argument("domains", nargs="+", metavar="DOMAIN")
    r.set_defaults(func=cmd_rm)

    ls = ds.add_parser("list", help="list domains")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--search", metavar="TEXT", help="name contains TEXT")
    ls.add_argument("--relay", metavar="NAME", help="only domains of this relay ('-': none)")
    ls.add_argument("--source", choices=enums.SOURCES)
    ls.add_argument("--recipients", choices=enums.RECIPIENT_POLICIES)
    state = ls.add_mutually_exclusive_group()
    state.add_argument("--enabled", dest="enabled", action="store_const", const=True, help="only enabled domains")
    state.add_argument("--disabled", dest="enabled", action="store_const", const=False, help="only disabled domains")
    ls.set_defaults(enabled=None, func=cmd_list)

    sh = ds.add_parser("show", help="a domain and what Postfix is told about it")
    sh.add_argument("domain")
    sh.add_argument("--recipient", help="a local part or address to try against relay_recipients")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)

    im = ds.add_parser("import", help="add many domains from FILE ('-': stdin), one transaction")
    im.add_argument("file", metavar="FILE")
    im.add_argument("--relay", metavar="NAME", help="relay for lines that name none")
    im.add_argument("--mx", action="store_true", help="lines that name no relay route by MX")
    im.add_argument("--skip-existing", action="store_true", help="skip domains that exist instead of refusing")
    im.set_defaults(func=cmd_import)
    domainbulk.register(ds)
    holds.register(ds)


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "relay": args.relay, "host": args.host, "mx": args.mx or None, "port": args.port,
        "protocol": args.protocol, "tls": args.tls, "recipients": args.recipients,
    }
    spec["verify_when_down"] = args.verify_when_down
    spec["when_primary_up"] = args.when_primary_up
    found = {k: v for k, v in spec.items() if v is not None}
    if args.queue_lifetime is not None:
        found["queue_lifetime"] = args.queue_lifetime
    for key in ("quota_messages", "quota_bytes"):
        value = getattr(args, key)
        if value is not None:
            found[key] = None if value == "default" else value
    return found


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    spec = _spec(args)
    spec.update(include_subdomains=args.subdomains, enabled=not args.disabled)
    d = common.with_db(cfg, lambda c: domains.add(c, Actor.cli(), args.domain, **spec))
    print(f"domain {d.name} added: {describe(d)}")
    return 0


def cmd_set(args: argparse.Namespace, cfg: Config) -> int:
    spec = _spec(args)
    if args.subdomains is not None:
        spec["include_subdomains"] = args.subdomains
    if args.enabled is not None:
        spec["enabled"] = args.enabled
    if args.pause is not None:
        spec.update(paused=True, pause_reason=args.pause or None)
    elif args.unpause:
        spec.update(paused=False, pause_reason=None)
    if args.recipient_source is not None:
        return _set_source(args, cfg, spec)
    if not spec:
        common.error("nothing to change (see mrod domain set --help)")
        return 2
    names, filters = domainbulk.selection(args)
    if filters is not None or names is None or len(names) != 1:
        return domainbulk.set_many(cfg, names, filters, spec)
    d = common.with_db(cfg, lambda c: domains.update(c, Actor.cli(), names[0], **spec))
    print(f"domain {d.name}: {describe(d)}")
    return 0


def _set_source(args: argparse.Namespace, cfg: Config, spec: dict[str, Any]) -> int:
    """--recipient-source: one domain, alone or with other changes (one transaction)."""
    from mrod.recipientsources import sources
    if len(args.domains) != 1 or args.domains == ["-"] or args.filter:
        common.error("--recipient-source is set on one domain at a time")
        return 2

    async def work(conn: Connection) -> domains.Domain:
        from mrod.infra import db
        async with db.transaction(conn):
            await sources.use_for_domain(conn, Actor.cli(), args.domains[0], args.recipient_source)
            if spec:
                return await domains.update(conn, Actor.cli(), args.domains[0], **spec)
            return await domains.get(conn, args.domains[0])

    d = common.with_db(cfg, work)
    print(f"domain {d.name}: {describe(d)}, recipient source {args.recipient_source}")
    return 0


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> list[domains.Domain]:
        from mrod.infra import db
        async with db.transaction(conn):
            return [await domains.remove(conn, Actor.cli(), name) for name in args.domains]

    for d in common.with_db(cfg, work):
        print(f"domain {d.name} removed")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> tuple[domains.Page, dict[int, str]]:
        from mrod.operations import checks
        page = await domains.search(conn, q=args.search, relay=args.relay, source=args.source,
                                    recipients=args.recipients, enabled=args.enabled, limit=None)
        return page, await checks.statuses(conn)

    page, dns = common.with_db(cfg, work)
    if args.json:
        # dns_check: the status of the domain's last DNS check (`mrod check`), None if never checked.
        common.print_json([{**d.as_dict(), "dns_check": dns.get(d.id)} for d in page.domains])
        return 0
    common.print_table(
        ["domain", "route", "enabled", "subdomains", "recipients", "source", "dns"],
        [(d.name, route_text(d), "yes" if d.enabled else "no", "yes" if d.include_subdomains else "no",
          d.recipients, d.source, dns.get(d.id, "")) for d in page.domains],
    )
    return 0


def cmd_show(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.recipientsources import sources

    async def work(conn: Connection) -> tuple[domains.Domain, sources.Source | None]:
        found = await domains.get(conn, args.domain)
        return found, await sources.feeding(conn, found.id, found.relay_id)

    d, source = common.with_db(cfg, work)
    options = routing.Options.from_config(cfg)
    told = oneshot.ask(cfg.database, cfg.lookupd.lookup_deadline,
                       lambda store: routing.told(store, d.name, args.recipient, options))
    if args.json:
        common.print_json({"domain": d.as_dict(), "recipient_source": source.name if source else None, "postfix": [
            {"map": m, "key": k, "answer": a.wire(), "why": a.why} for m, k, a in told]})
        return 0
    print(f"{d.name}: {describe(d)}")
    if source is not None:
        print(f"recipients synced from {source.name} (last good sync: {source.ok_at or 'never'}"
              + (f"; failing: {source.error}" if source.error else "") + ")")
    print("what Postfix is told:")
    for map_name, key, result in told:
        print(f"  {map_name} {key!r} -> {result.wire()}")
        print(f"      # {result.why}")
    return 0


def cmd_import(args: argparse.Namespace, cfg: Config) -> int:
    text = common.read_input(args.file)
    if text is None:
        return 1
    lines = text.splitlines()
    try:
        report = common.with_db(cfg, lambda c: domainimport.bulk_add(
            c, Actor.cli(), lines, relay=args.relay, mx=args.mx, skip_existing=args.skip_existing))
    except domainimport.ImportRefused as exc:
        for number, _text, why in exc.report.refused:
            print(f"{args.file}:{number}: {why}", file=sys.stderr)
        common.error(f"{len(exc.report.refused)} line(s) refused; nothing was imported")
        return 1
    print(f"{len(report.added)} domain(s) imported, {len(report.skipped)} skipped")
    return 0


def route_text(d: domains.Domain) -> str:
    if d.route_kind == "relay":
        return f"relay {d.relay_name}"
    if d.route_kind == "host":
        return f"{d.protocol} [{d.host}]:{d.port} tls={d.tls}"
    return "mx" + (f" tls={d.tls}" if d.tls and d.tls != "may" else "")


def describe(d: domains.Domain) -> str:
    flags = [route_text(d), "enabled" if d.enabled else "disabled", f"recipients={d.recipients}"]
    if d.include_subdomains:
        flags.append("with subdomains")
    if d.recipients == "verify":
        flags.append(f"unknown recipients while the primary is down: {d.verify_when_down}")
    if d.when_primary_up != "inherit":
        flags.append(f"while the primary is up: {d.when_primary_up}")
    if d.paused:
        flags.append("PAUSED" + (f" ({d.pause_reason})" if d.pause_reason else ""))
    for what, value in (("messages", d.quota_messages), ("bytes", d.quota_bytes)):
        if value is not None:
            flags.append(f"quota {value} {what}" if value else f"no {what} quota")
    if d.queue_lifetime is not None:
        flags.append(f"queue lifetime {durations.duration_text(d.queue_lifetime)}")
    return ", ".join(flags)
