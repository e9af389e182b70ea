"""`mrod mta-sts list [--json] | refresh [DOMAIN] [--json]`: the cached MTA-STS policies and
DANE verdicts of the destination domains, and a refresh now (as the job of `mrod serve`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mrod.cli.common import print_json, print_table, with_db
from mrod.infra import names
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.mtasts import cache, dane, fetch
from mrod.mtasts.cache import Cached
from mrod.mtasts.refresh import Refresher


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mta-sts", help="MTA-STS policies and DANE of the destination domains (the tls_policy answer)")
    actions = p.add_subparsers(dest="action", required=True, metavar="list|refresh")
    a = actions.add_parser("list", help="the cached policies and the answer lookupd gives")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_list)
    a = actions.add_parser("refresh", help="look up every enabled domain's policy now (or one domain's)")
    a.add_argument("domain", nargs="?")
    a.add_argument("--force", action="store_true", help="fetch the policy even when its TXT id is unchanged")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_refresh)


def _show(entries: list[Cached], as_json: bool) -> None:
    if as_json:
        print_json([e.as_dict() for e in entries])
        return
    print_table(("domain", "mode", "mx", "dane", "answer", "expires", "error"),
                [(e.domain, e.mode or "-", ",".join(e.mx) or "-", "yes" if e.dane else "no", e.answer or "-",
                  e.expires_at or "-", e.error or "") for e in entries])


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    _show(with_db(cfg, cache.all_cached), args.json)
    return 0


def cmd_refresh(args: argparse.Namespace, cfg: Config) -> int:
    domain = names.domain(args.domain) if args.domain else None

    async def work(conn: Connection) -> list[Cached]:
        return await Refresher(cfg).run(conn, domain, force=args.force)

    entries = with_db(cfg, work)
    _show(entries, args.json)
    if cfg.mta_sts.dane and not asyncio.run(dane.resolver_validates(fetch.resolver_for(cfg), ".")):
        # DANE verdicts rest on the resolver's AD bit: without validation none is ever 'dane'.
        sys.stderr.write("mrod: note: the resolver mrod asks ([mta_sts] resolver, else [checks] resolver, else "
                         "/etc/resolv.conf) does not validate DNSSEC (no AD bit for the root zone): no domain "
                         "gets a DANE answer; Postfix's resolver must validate too (docs/tls.md)\n")
    # One domain asked for: a failed look-up is a runtime error (the row says why, and keeps
    # the cached policy); a refresh of all reports failures in the table only.
    return 1 if domain is not None and entries[0].error else 0
