"""``mrod queue list|hold|release|requeue|delete``: the queue message by message (plain ``mrod
queue`` — per-domain figures, --flush, --all-nodes — stays in mrod.cli.ops).

The CLI is the operator's (the ``queue`` permission): it sees every message. ``delete`` asks
for confirmation on a terminal and needs ``--yes`` otherwise (a script must say it means it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from mrod.cli import common
from mrod.entities.audit import Actor
from mrod.infra import db, names
from mrod.infra.config import Config
from mrod.infra.enums import QUEUE_NAMES, QueueAction
from mrod.infra.errors import InvalidInput
from mrod.operations import queueactions
from mrod.operations.queuelist import Page, QueueFilter

ACTIONS = {QueueAction.HOLD: "put messages on hold (postsuper -h): kept, not delivered, not expired",
           QueueAction.RELEASE: "release held messages (postsuper -H) and deliver them now (postqueue -i)",
           QueueAction.REQUEUE: "requeue messages (postsuper -r): routed afresh and delivered now",
           QueueAction.DELETE: "delete messages (postsuper -d): gone, no bounce"}


def register(queue: argparse.ArgumentParser) -> None:
    sub = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=False)
    p = sub.add_parser("list", help="queued messages one by one, filtered and paged")
    _filters(p)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="messages per page (1-1000, default 50)")
    p.add_argument("--after", metavar="QID", help="the page after this queue id (the previous page's last)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    for action, text in ACTIONS.items():
        p = sub.add_parser(action.value, help=text)
        p.add_argument("ids", nargs="*", metavar="QID", help="queue ids (as `mrod queue list` shows them)")
        _filters(p)
        p.add_argument("--all-matching", action="store_true",
                       help="every message of the filter (needs --domain; only messages wholly for it)")
        if action == QueueAction.DELETE:
            p.add_argument("--yes", action="store_true", help="delete without asking")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_action, queue_action=action.value)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--domain", metavar="D", help="messages with a recipient in this domain (and its"
                   " subdomains when it includes them)")
    p.add_argument("--queue", choices=QUEUE_NAMES, help="only this Postfix queue")
    p.add_argument("--sender", metavar="S", help="sender contains S (case-insensitive)")
    p.add_argument("--recipient", metavar="R", help="a recipient contains R (case-insensitive)")
    p.add_argument("--older-than", metavar="DURATION", help="waiting at least this long (e.g. 30m, 12h, 3d)")


async def _filter(cfg: Config, args: argparse.Namespace) -> QueueFilter:
    async with db.opened(cfg.database) as conn:
        return await queueactions.build_filter(conn, domain=args.domain, queue=args.queue, sender=args.sender,
                                               recipient=args.recipient, older_than=args.older_than)


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    async def work() -> Page:
        return await queueactions.list_page(cfg, await _filter(cfg, args), limit=args.limit, after=args.after)

    page = asyncio.run(work())
    if args.json:
        common.print_json(page.as_dict())
        return 0
    rows = [m.as_dict() for m in page.messages]
    common.print_table(["queue id", "queue", "age", "size", "sender", "recipients", "reason"],
                       [(r["queue_id"], r["queue"], r["age"], r["size"], r["sender"],
                         ", ".join(x["address"] for x in r["recipients"])[:60], (r["reason"] or "")[:60])
                        for r in rows])
    print(f"{len(rows)} of {page.total} matching message(s)"
          + (f"; next page: --after {page.next_after}" if page.next_after else ""))
    return 0


def cmd_action(args: argparse.Namespace, cfg: Config) -> int:
    action = args.queue_action
    if not args.ids and not args.all_matching:
        raise InvalidInput("QID", f"give the queue ids to {action}, or --domain D --all-matching")
    if action == QueueAction.DELETE and not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInput("--yes", "delete needs --yes when not asked on a terminal")
        what = f"{len(args.ids)} message(s)" if args.ids else f"every matching message for {args.domain}"
        if input(f"Delete {what}? Deleted mail is gone, no bounce is sent. [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1

    async def work() -> queueactions.ActionResult:
        flt = await _filter(cfg, args)
        return await queueactions.act(cfg, Actor.cli(), action, ids=args.ids, flt=flt,
                                      all_matching=args.all_matching)

    result = asyncio.run(work())
    if args.json:
        common.print_json(result.as_dict())
    else:
        where = f" for {names.to_unicode(args.domain)}" if args.domain else ""
        print(f"{action}{where}: Postfix acted on {result.done} of {len(result.ids)} message(s)"
              + (f"; {result.skipped} left alone (recipients in other domains too)" if result.skipped else ""))
        for failure in result.failures:
            print(f"delivery not started: {failure}", file=sys.stderr)
    return 1 if result.failures else 0
