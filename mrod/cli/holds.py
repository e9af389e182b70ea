"""``mrod domain hold D`` / ``mrod domain release D``: keep a domain's queued mail on hold
(not delivered, not expired) and give it back; ``mrod domain holds`` lists the held domains
(by hand, or by the circuit breaker of the careful flush)."""

from __future__ import annotations

import argparse
import asyncio

from mrod.entities import holds
from mrod.entities.audit import Actor
from mrod.infra import names
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.operations import holdqueue
from mrod.cli import common


def register(ds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    h = ds.add_parser("hold", help="keep the domain's queued mail on hold (postsuper -h): not delivered, not expired")
    h.add_argument("domain")
    h.set_defaults(func=cmd_hold, held=True)
    r = ds.add_parser("release", help="give a held domain's mail back to Postfix (delivered now)")
    r.add_argument("domain")
    r.set_defaults(func=cmd_hold, held=False)
    ls = ds.add_parser("holds", help="held domains: by hand or by the circuit breaker")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_holds)


def cmd_hold(args: argparse.Namespace, cfg: Config) -> int:
    name = names.domain(args.domain, min_labels=1)
    hold, note = asyncio.run(holdqueue.set_hold(cfg, Actor.cli(), name, args.held))
    if args.held:
        assert hold is not None
        print(f"{names.to_unicode(name)}: held ({hold.reason}, since {hold.held_at}); {note}")
    else:
        print(f"{names.to_unicode(name)}: {'released' if hold else 'was not held'}; {note}")
    return 0


def cmd_holds(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> list[holds.Hold]:
        return await holds.all_holds(conn)

    rows = common.with_db(cfg, work)
    if args.json:
        common.print_json([h.as_dict() for h in rows])
    else:
        common.print_table(["domain", "reason", "held at", "by", "node", "detail"],
                           [(names.to_unicode(h.domain), h.reason, h.held_at, h.held_by, h.node,
                             (h.detail or "")[:70]) for h in rows])
    return 0


