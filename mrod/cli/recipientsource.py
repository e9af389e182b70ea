"""``mrod recipient-source add|set|list|sync|accept|rm``: recipient lists synced from a primary's
directory (LDAP), mail database (SQL) or an export (URL); docs/recipient-sources.md."""

from __future__ import annotations

import argparse
from typing import Any

from mrod.cli import common
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import SOURCE_FORMATS, SOURCE_KINDS
from mrod.recipientsources import sources, spec as specs, status, sync


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recipient-source", help="recipient lists synced from a primary's directory, database or URL")
    rs = p.add_subparsers(dest="recipient_source_command", metavar="ACTION", required=True)
    for action, help_ in (("add", "add a source"), ("set", "change how a source is read (give every option again)")):
        a = rs.add_parser(action, help=help_)
        a.add_argument("name", help="the source's name (unique)")
        kind = a.add_mutually_exclusive_group(required=True)
        kind.add_argument("--ldap", metavar="URL", help="ldap://host[:port] or ldaps://host[:port]")
        kind.add_argument("--sql", metavar="URL", help="postgresql://user@host/db or mysql://user@host/db")
        kind.add_argument("--url", metavar="URL", help="http(s):// export returning JSON or CSV")
        a.add_argument("--base", metavar="DN", help="LDAP search base")
        a.add_argument("--filter", metavar="F", help="LDAP filter (default (mail=*))")
        a.add_argument("--attribute", action="append", metavar="NAME",
                       help="LDAP attribute holding addresses (repeatable; default mail)")
        a.add_argument("--bind-dn", metavar="DN", help="LDAP bind DN")
        a.add_argument("--starttls", action="store_true", help="LDAP: StartTLS on an ldap:// URL")
        a.add_argument("--ca-file", metavar="FILE", help="CA certificates that verify the server (LDAP/URL TLS)")
        a.add_argument("--query", metavar="Q", help="SQL: a SELECT whose first column is an address")
        a.add_argument("--format", choices=SOURCE_FORMATS, help="URL: json (default) or csv")
        a.add_argument("--password-file", metavar="FILE", help="a file whose first line is the password")
        a.set_defaults(func=cmd_add if action == "add" else cmd_set)
    ls = rs.add_parser("list", help="sources with their last sync")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ls.set_defaults(func=cmd_list)
    s = rs.add_parser("sync", help="sync one source, or all, now")
    s.add_argument("name", nargs="?", help="the source (default: every source)")
    s.set_defaults(func=cmd_sync)
    ac = rs.add_parser("accept", help="apply a result held for safety (empty, or removing too much), and sync")
    ac.add_argument("name", help="the source")
    ac.set_defaults(func=cmd_accept)
    r = rs.add_parser("rm", help="remove a source (its domains keep their lists)")
    r.add_argument("name", help="the source")
    r.set_defaults(func=cmd_rm)


def _spec(args: argparse.Namespace) -> specs.Spec:
    kind, url = next((k, getattr(args, k)) for k in SOURCE_KINDS if getattr(args, k))
    fields: dict[str, Any] = {
        "name": args.name, "kind": kind, "url": url, "base": args.base, "filter": args.filter,
        "attributes": ",".join(args.attribute or []), "bind_dn": args.bind_dn, "starttls": args.starttls,
        "ca_file": args.ca_file, "query": args.query, "format": args.format, "password_file": args.password_file}
    return specs.parse(fields)


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    spec = _spec(args)
    source = common.with_db(cfg, lambda c: sources.add(c, Actor.cli(), spec))
    print(f"recipient source {source.name} added ({source.kind} {source.url}); it feeds no domain until one uses it:"
          f" mrod domain set DOMAIN --recipient-source {source.name}")
    return 0


def cmd_set(args: argparse.Namespace, cfg: Config) -> int:
    spec = _spec(args)
    source = common.with_db(cfg, lambda c: sources.update(c, Actor.cli(), args.name, spec))
    print(f"recipient source {source.name}: {source.kind} {source.url}")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    rows = common.with_db(cfg, status.describe_all)
    if args.json:
        common.print_json(rows)
        return 0
    common.print_table(
        ["name", "kind", "url", "domains", "last ok", "age", "addresses", "ignored", "state"],
        [(r["name"], r["kind"], r["url"], ",".join(r["domains"]), r["ok_at"] or "never", r["age"], r["addresses"],
          r["ignored"], r["state"] + (f": {r['error']}" if r["error"] else "")) for r in rows])
    return 0


def _report(outcomes: list[sync.Outcome]) -> int:
    for outcome in outcomes:
        print(outcome.line())
    return 1 if any(o.error for o in outcomes) else 0


def cmd_sync(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> list[sync.Outcome]:
        if args.name:
            return [await sync.run(cfg, conn, args.name)]
        return await sync.run_all(cfg, conn)

    outcomes = common.with_db(cfg, work)
    if not outcomes:
        print("no recipient source (mrod recipient-source add)")
    return _report(outcomes)


def cmd_accept(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> sync.Outcome:
        await sources.accept(conn, Actor.cli(), args.name)
        return await sync.run(cfg, conn, args.name)

    return _report([common.with_db(cfg, work)])


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> None:
        async with db.transaction(conn):
            await sources.remove(conn, Actor.cli(), args.name)

    common.with_db(cfg, work)
    print(f"recipient source {args.name} removed; its domains keep their lists")
    return 0
