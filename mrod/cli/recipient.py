"""``mrod recipient add|rm|list``: recipients of domains with recipient policy 'listed'."""

from __future__ import annotations

import argparse


from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.entities import domains, recipients
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.cli import common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recipient", help="accepted recipients of 'listed' domains")
    rs = p.add_subparsers(dest="recipient_command", metavar="ACTION", required=True)
    a = rs.add_parser("add", help="list addresses (user@domain, or @domain for every address)")
    a.add_argument("addresses", nargs="+", metavar="ADDRESS")
    a.set_defaults(func=cmd_add)
    r = rs.add_parser("rm", help="unlist addresses")
    r.add_argument("addresses", nargs="+", metavar="ADDRESS")
    r.set_defaults(func=cmd_rm)
    ls = rs.add_parser("list", help="the recipients listed for a domain")
    ls.add_argument("domain")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> list[recipients.Recipient]:
        async with db.transaction(conn):  # all or nothing
            return [await recipients.add(conn, Actor.cli(), a) for a in args.addresses]

    for rcpt in common.with_db(cfg, work):
        print(f"{rcpt.address} listed for {rcpt.domain}")
    return 0


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> None:
        async with db.transaction(conn):
            for a in args.addresses:
                await recipients.remove(conn, Actor.cli(), a)

    common.with_db(cfg, work)
    print(f"{len(args.addresses)} recipient(s) removed")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> tuple[domains.Domain, list[recipients.Recipient]]:
        return await domains.get(conn, args.domain), await recipients.list_for(conn, args.domain)

    domain, items = common.with_db(cfg, work)
    if args.json:
        common.print_json([r.address for r in items])
    elif not items:
        accepts = ("it accepts every address (recipient policy accept_all)" if domain.recipients == "accept_all"
                   else "it accepts no address until one is added (mrod recipient add user@DOMAIN)")
        print(f"no recipients listed for {domain.name}: {accepts}")
    else:
        for r in items:
            print(r.address)
    return 0
