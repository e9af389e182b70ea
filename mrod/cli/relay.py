"""``mrod relay add|list|set|rm``."""

from __future__ import annotations

import argparse

from mrod.entities import relays
from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.recipientsources import sources
from mrod.entities.audit import Actor
from mrod.infra.errors import InUse
from mrod.infra.config import Config
from mrod.cli import common
from mrod.infra import enums


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("relay", help="primary mail servers")
    rs = p.add_subparsers(dest="relay_command", metavar="ACTION", required=True)

    a = rs.add_parser("add", help="add a relay")
    a.add_argument("name")
    a.add_argument("--host", required=True, help="host name or IP address of the primary")
    a.add_argument("--port", default="25")
    a.add_argument("--protocol", default="smtp", choices=enums.PROTOCOLS,
                   help="smtp (plain/STARTTLS) or smtps (implicit TLS)")
    a.add_argument("--tls", default="may", choices=enums.TLS_LEVELS, help="TLS requirement")
    a.add_argument("--when-primary-up", dest="when_primary_up", default="accept", choices=enums.RELAY_WHEN_PRIMARY_UP,
                   help="while this primary is up: accept its domains' mail (default), or defer it (4xx: senders'"
                        " MTAs retry the primary); a domain may say otherwise")
    a.set_defaults(func=cmd_add)

    ls = rs.add_parser("list", help="list relays")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    s = rs.add_parser("set", help="change a relay")
    s.add_argument("name")
    s.add_argument("--name", dest="new_name", help="rename")
    s.add_argument("--host")
    s.add_argument("--port")
    s.add_argument("--protocol", choices=enums.PROTOCOLS)
    s.add_argument("--tls", choices=enums.TLS_LEVELS)
    s.add_argument("--recipient-source", metavar="NAME", help="sync its domains' recipients from this source"
                   " ('none': no source); a domain's own --recipient-source comes first")
    s.add_argument("--when-primary-up", dest="when_primary_up", choices=enums.RELAY_WHEN_PRIMARY_UP,
                   help="while this primary is up: accept its domains' mail, or defer it (4xx: senders'"
                        " MTAs retry the primary); a domain may say otherwise")
    s.set_defaults(func=cmd_set)

    r = rs.add_parser("rm", help="remove a relay (refused while domains use it)")
    r.add_argument("name")
    r.add_argument("--reassign", metavar="RELAY", help="move its domains to this relay first")
    r.set_defaults(func=cmd_rm)


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    relay = common.with_db(cfg, lambda c: relays.add(
        c, Actor.cli(), name=args.name, host=args.host, port=args.port, protocol=args.protocol, tls=args.tls,
        when_primary_up=args.when_primary_up))
    print(f"relay {relay.name} added: {relay.protocol} {relay.nexthop} tls={relay.tls}{_mode(relay)}")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    items = common.with_db(cfg, relays.list_all)
    if args.json:
        common.print_json([r.as_dict() for r in items])
    else:
        common.print_table(
            ["id", "name", "host", "port", "protocol", "tls", "when up", "domains"],
            [(r.id, r.name, r.host, r.port, r.protocol, r.tls, r.when_primary_up, r.domain_count) for r in items],
        )
    return 0


def cmd_set(args: argparse.Namespace, cfg: Config) -> int:
    changes = {k: v for k, v in (("name", args.new_name), ("host", args.host), ("port", args.port),
                                  ("protocol", args.protocol), ("tls", args.tls),
                                  ("when_primary_up", args.when_primary_up)) if v is not None}
    if not changes and args.recipient_source is None:
        common.error("nothing to change: give --name, --host, --port, --protocol, --tls, --when-primary-up"
                     " or --recipient-source")
        return 2

    async def work(conn: Connection) -> relays.Relay:
        async with db.transaction(conn):
            if args.recipient_source is not None:
                await sources.use_for_relay(conn, Actor.cli(), args.name, args.recipient_source)
            if changes:
                return await relays.update(conn, Actor.cli(), args.name, changes)
            return await relays.get(conn, args.name)

    relay = common.with_db(cfg, work)
    print(f"relay {relay.name}: {relay.protocol} {relay.nexthop} tls={relay.tls}{_mode(relay)}")
    return 0


def _mode(relay: relays.Relay) -> str:
    return ", defer while up" if relay.when_primary_up == "defer" else ""


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    try:
        common.with_db(cfg, lambda c: relays.remove(c, Actor.cli(), args.name, reassign_to=args.reassign))
    except InUse as exc:   # say how, in this command's words
        raise InUse(f"{exc}; to move them: mrod relay rm {args.name} --reassign OTHER_RELAY") from None
    print(f"relay {args.name} removed")
    return 0
