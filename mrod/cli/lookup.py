"""``mrod lookup MAP KEY``: what lookupd would answer Postfix, and why."""

from __future__ import annotations

import argparse
import sqlite3

from mrod.answers import routing
from mrod.infra.config import Config
from mrod.infra.errors import DatabaseNotReady
from mrod.answers import oneshot
from mrod.infra import enums

EX_TEMPFAIL = 75


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lookup", help="what lookupd answers Postfix for MAP and KEY, and why"
                       " (exit 0 found, 1 not found, 75 TEMP)")
    p.add_argument("map", choices=enums.MAPS)
    p.add_argument("key")
    p.set_defaults(func=cmd_lookup)


def cmd_lookup(args: argparse.Namespace, cfg: Config) -> int:
    try:
        options = routing.Options.from_config(cfg)
        result = oneshot.ask(cfg.database, cfg.lookupd.lookup_deadline,
                             lambda store: routing.answer(store, args.map, args.key, options))
    except (sqlite3.Error, DatabaseNotReady) as exc:
        # lookupd answers TEMP on any fault, so Postfix defers instead of rejecting.
        result = routing.Answer(routing.TEMP, str(exc), "internal fault: lookupd answers TEMP")
    print(result.wire())
    print(f"# {result.why}")
    # Like postmap -q: 0 found, 1 not found.
    if result.status == routing.TEMP:
        return EX_TEMPFAIL
    return 0 if result.status == routing.OK else 1
