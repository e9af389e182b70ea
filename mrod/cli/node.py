"""``mrod node rm`` — forget a node taken out of service (several nodes on one PostgreSQL:
docs/cluster.md). ``mrod health --all-nodes`` lists the nodes."""

from __future__ import annotations

import argparse

from mrod.cli import common
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.operations import nodereports


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("node", help="nodes sharing this database (list them: mrod health --all-nodes)")
    ns = p.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    r = ns.add_parser("rm", help="forget a node taken out of service: its status and every reading stored "
                                 "under its name (not this node)")
    r.add_argument("name", help="the node's [node] name")
    r.set_defaults(func=cmd_rm)


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    removed = common.with_db(cfg, lambda c: nodereports.forget(c, Actor.cli(), args.name, cfg.node.name))
    print(f"node {args.name} forgotten: " + ", ".join(f"{n} {table}" for table, n in removed.items()))
    return 0
