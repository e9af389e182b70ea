"""``mrod notify list [--json]`` (what was sent, to whom, delivered or failed) and ``mrod notify
test CHANNEL`` (a test message through a channel of [notify.*], now)."""

from __future__ import annotations

import argparse

from mrod.cli import common
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import NOTICE_STATUSES, NOTIFY_CHANNELS, NoticeStatus
from mrod.notify import dispatcher, store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("notify", help="notifications: what was sent, and a test of a channel")
    ns = p.add_subparsers(dest="notify_command", metavar="ACTION", required=True)
    ls = ns.add_parser("list", help="the notifications sent, newest first, and the channels' state")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--status", choices=[str(s) for s in NOTICE_STATUSES], help="only these")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.set_defaults(func=cmd_list)
    t = ns.add_parser("test", help="send a test message through a channel now (exit 1 when it fails)")
    t.add_argument("channel", choices=[str(c) for c in NOTIFY_CHANNELS],
                   help="the channel: email (to [notify.email] to) or webhook")
    t.set_defaults(func=cmd_test)


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    if not 1 <= args.limit <= 10_000:
        common.error("--limit must be from 1 to 10000")
        return 2

    async def work(conn: Connection) -> tuple[list[store.Notice], list[dict[str, object]]]:
        _, page = await store.listing(conn, limit=args.limit, status=args.status)
        return page, await dispatcher.channel_states(conn, cfg)

    notices, states = common.with_db(cfg, work)
    if args.json:
        common.print_json({"channels": states, "notifications": [n.as_dict() for n in notices]})
        return 0
    for state in states:
        print(f"channel {state['channel']}: {state['state']} — {state['target']}"
              + (f"; last error: {state['last_error']}" if state["last_error"] else "")
              + (f"; {state['retrying']} waiting for a retry" if state["retrying"] else ""))
    if not states:
        print("no channel is set up ([notify.email] to / owners, [notify.webhook] url)")
    if notices:
        common.print_table(["at", "event", "subject", "channel", "recipient", "status", "attempts", "title / error"],
                           [(n.at, n.event, n.subject, n.channel, n.recipient, n.status, n.attempts,
                             (n.last_error if n.status != NoticeStatus.DELIVERED and n.last_error else n.title)[:80])
                            for n in notices])
    else:
        print("no notifications sent")
    return 0


def cmd_test(args: argparse.Namespace, cfg: Config) -> int:
    who = Actor.cli().name
    results = common.with_db(cfg, lambda c: dispatcher.send_test(c, cfg, args.channel, who))
    bad = 0
    for notice in results:
        if notice.status == NoticeStatus.DELIVERED:
            print(f"test sent through {notice.channel} to {notice.recipient}: delivered")
        else:
            bad += 1
            common.error(f"test through {notice.channel} to {notice.recipient} failed: {notice.last_error}")
    return 1 if bad else 0
