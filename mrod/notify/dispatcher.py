"""One notification round (the ``notify`` job of ``mrod serve``): read every event source,
compare with what was told, queue one message per recipient and channel, and deliver what is
due — new messages and retries. Also the "send a test" of the panel, API and CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import NOTIFY_CHANNELS, NoticeStatus, NotifyChannel, Severity
from mrod.infra.errors import InvalidInput
from mrod.notify import channels, conditions, events, featureevents, messages, store
from mrod.notify.messages import Item
from mrod.operations.syncstatus import seconds

log = logging.getLogger("mrod.notify")
assert conditions and featureevents     # imported for their registrations: the event sources


@dataclass(frozen=True)
class Round:
    items: list[Item]             # the notices of this round
    queued: int                   # messages queued (recipients x channels)
    delivered: int
    failed: int                   # attempts that failed (retried later, or given up)


async def run_round(cfg: Config, now: datetime | None = None) -> Round:
    now = now or datetime.now(timezone.utc)
    async with db.opened(cfg.database) as conn:
        items = await evaluate(conn, cfg, now)
        queued = await queue(conn, cfg, items, now) if items else 0
        delivered, failed = await deliver_due(conn, cfg, now)
        async with db.transaction(conn):
            await store.prune(conn, db.stamp(now - timedelta(days=cfg.notify.keep_days)))
    return Round(items, queued, delivered, failed)


async def evaluate(conn: Connection, cfg: Config, now: datetime) -> list[Item]:
    """The notices of this round, with notify_state brought up to date (in one transaction)."""
    node, stamp = cfg.node.name, db.stamp(now)
    ctx = events.SourceContext(conn, cfg, node, now)
    current: dict[tuple[str, str], tuple[str, events.Event]] = {}
    broken = set()
    for name, source in events.sources().items():
        try:
            for event in await source(ctx):
                current.setdefault(event.key, (name, event))
        except Exception as exc:  # noqa: BLE001 - one broken source must not silence the others
            broken.add(name)
            log.warning("notification source %s failed: %s", name, exc)
    repeat = timedelta(seconds=cfg.notify.repeat)
    async with db.transaction(conn):
        told = await store.held(conn, node)
        items, keep, gone = [], [], []
        for key, (name, event) in current.items():
            before = told.get(key)
            due = before is None or before.notified_at is None or db.parse_stamp(before.notified_at) + repeat <= now
            if due:
                items.append(Item("new" if before is None else "repeat", event.kind, event.subject,
                                  str(event.severity), event.text, event.domains))
            keep.append(store.Held(name, event.kind, event.subject, str(event.severity), event.text, event.domains,
                                   event.resolved, before.since if before else event.since or stamp, stamp,
                                   stamp if due else before.notified_at if before else None))
        for key, before in told.items():
            if key in current or before.source in broken:
                continue
            lasted = seconds((now - db.parse_stamp(before.since)).total_seconds())
            items.append(Item("resolved", before.kind, before.subject, str(Severity.INFO),
                              f"{before.subject} {before.resolved} (after {lasted})", before.domains))
            gone.append(key)
        await store.save_state(conn, node, keep, gone)
    return items


async def queue(conn: Connection, cfg: Config, items: list[Item], now: datetime) -> int:
    """One message per recipient and channel: the operator's with every notice, each owner's
    with those of their domains."""
    node, stamp = cfg.node.name, db.stamp(now)
    outgoing: list[tuple[str, str, list[Item]]] = []
    mail = cfg.notify.email
    if cfg.notify.webhook.url:
        outgoing.append((NotifyChannel.WEBHOOK, cfg.notify.webhook.url, items))
    outgoing += [(NotifyChannel.EMAIL, address, items) for address in mail.to]
    if mail.owners:
        owners: dict[str, set[str]] = {}
        for domain, address in (await store.contacts(conn, (d for i in items for d in i.domains))).items():
            owners.setdefault(address, set()).add(domain)
        for address, theirs in sorted(owners.items()):
            mine = messages.for_owner(items, theirs)
            if mine and address not in mail.to:     # the operator's own copy already says it all
                outgoing.append((NotifyChannel.EMAIL, address, mine))
    async with db.transaction(conn):
        for channel, recipient, some in outgoing:
            title, payload = messages.compose(some, node, at=stamp)
            subject = some[0].subject if len(some) == 1 else f"{len(some)} subjects"
            await store.add(conn, node, event=payload["event"], subject=subject, channel=channel,
                            recipient=recipient, title=title, payload=payload, now=stamp)
    return len(outgoing)


def retry_at(cfg: Config, attempts: int, now: datetime) -> str | None:
    """When to try again after ``attempts`` failed attempts (None: give up)."""
    settings = cfg.notify
    if attempts >= settings.max_attempts:
        return None
    wait = min(settings.retry_max, settings.retry_backoff * 2 ** (attempts - 1))
    return db.stamp(now + timedelta(seconds=wait))


async def attempt(conn: Connection, cfg: Config, notice: store.Notice, now: datetime, *, retry: bool = True) -> str:
    """Deliver one stored message once and record how it went; returns its new status."""
    try:
        await channels.deliver(cfg, notice.channel, notice.recipient, notice.title, notice.payload)
    except channels.ChannelError as exc:
        later = retry_at(cfg, notice.attempts + 1, now) if retry else None
        if retry:        # a test's failure is the caller's to say (the page, the CLI's one line)
                log.warning("notification %d to %s %s failed (attempt %d%s): %s", notice.id, notice.channel,
                        notice.recipient, notice.attempts + 1, f", again at {later}" if later else ", giving up", exc)
        return await store.attempted(conn, notice, error=str(exc), now=db.stamp(now), retry_at=later)
    return await store.attempted(conn, notice, error=None, now=db.stamp(now), retry_at=None)


async def deliver_due(conn: Connection, cfg: Config, now: datetime) -> tuple[int, int]:
    """(delivered, failed attempts) of this node's messages that are due."""
    delivered = failed = 0
    for notice in await store.due(conn, cfg.node.name, db.stamp(now)):
        status = await attempt(conn, cfg, notice, now)
        delivered += status == NoticeStatus.DELIVERED
        failed += status != NoticeStatus.DELIVERED
    return delivered, failed


async def send_test(conn: Connection, cfg: Config, channel: str, who: str) -> list[store.Notice]:
    """A test message through one channel, now (one attempt, not retried); the stored results.
    InvalidInput when the channel is unknown or not set up."""
    if channel not in NOTIFY_CHANNELS:
        raise InvalidInput("channel", f"{channel!r} is not a channel (channels: {', '.join(NOTIFY_CHANNELS)})")
    if channel not in channels.configured(cfg):
        raise InvalidInput("channel", f"the {channel} channel is not set up ([notify.{channel}] in the config)")
    recipients = [cfg.notify.webhook.url] if channel == NotifyChannel.WEBHOOK else list(cfg.notify.email.to)
    if not recipients:
        raise InvalidInput("channel", "the email channel has no operator address to test ([notify.email] to)")
    now = datetime.now(timezone.utc)
    stamp, node = db.stamp(now), cfg.node.name
    item = Item("new", "test", channel, str(Severity.INFO), f"a test of the {channel} channel, sent by {who}", ())
    title, payload = messages.compose([item], node, at=stamp, event="test")
    sent = []
    for recipient in recipients:
        async with db.transaction(conn):
            notice_id = await store.add(conn, node, event="test", subject=channel, channel=channel,
                                        recipient=recipient, title=title, payload=payload, now=stamp)
        [notice] = await store.by_ids(conn, [notice_id])
        await attempt(conn, cfg, notice, now, retry=False)
        sent.append(notice_id)
    return await store.by_ids(conn, sent)


async def channel_states(conn: Connection, cfg: Config) -> list[dict[str, Any]]:
    """Every channel set up, with its last attempt (ok or failing, and why) and retries waiting."""
    last = await store.last_attempts(conn)
    waiting = await store.waiting(conn)
    found = []
    for name, where in channels.configured(cfg).items():
        notice = last.get(name)
        state = "unused" if notice is None else "ok" if notice.status == NoticeStatus.DELIVERED else "failing"
        found.append({"channel": name, "target": where, "state": state,
                      "last_at": notice.at if notice else None,
                      "last_error": notice.last_error if notice and state == "failing" else None,
                      "retrying": waiting.get(name, 0)})
    return found
