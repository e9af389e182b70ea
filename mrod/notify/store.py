"""The notification tables (migration 0014): ``notify_state`` — the conditions this node has
told, so a restart does not tell them again — and ``notification`` — every message, its
recipient, channel and delivery state. Each message is audited when it is queued and when it is
finally delivered or given up (actor ``notify``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from mrod.entities import audit
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.infra.enums import NoticeStatus

ACTOR = Actor.system("notify")


@dataclass(frozen=True)
class Held:
    """A condition told and still holding at the last round (a notify_state row)."""
    source: str
    kind: str
    subject: str
    severity: str
    text: str
    domains: tuple[str, ...]
    resolved: str
    since: str
    seen_at: str
    notified_at: str | None


async def held(conn: Connection, node: str) -> dict[tuple[str, str], Held]:
    async with conn.execute(
            "SELECT source, kind, subject, severity, text, domains, resolved, since, seen_at, notified_at"
            " FROM notify_state WHERE node = ?", (node,)) as cur:
        rows = await cur.fetchall()
    found = {}
    for r in rows:
        entry = Held(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7], r[8], r[9])
        found[(entry.kind, entry.subject)] = entry
    return found


async def save_state(conn: Connection, node: str, keep: Iterable[Held], gone: Iterable[tuple[str, str]]) -> None:
    """Write the conditions that hold (insert or update) and remove the resolved ones."""
    await conn.executemany(
        "INSERT INTO notify_state (node, source, kind, subject, severity, text, domains, resolved, since, seen_at,"
        " notified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node, kind, subject) DO UPDATE SET"
        " source = excluded.source, severity = excluded.severity, text = excluded.text,"
        " domains = excluded.domains, resolved = excluded.resolved, seen_at = excluded.seen_at,"
        " notified_at = excluded.notified_at",
        [(node, h.source, h.kind, h.subject, h.severity, h.text, json.dumps(list(h.domains)), h.resolved, h.since,
          h.seen_at, h.notified_at) for h in keep])
    await conn.executemany("DELETE FROM notify_state WHERE node = ? AND kind = ? AND subject = ?",
                           [(node, kind, subject) for kind, subject in gone])


async def contacts(conn: Connection, domains: Iterable[str]) -> dict[str, str]:
    """Domain name -> its owner's contact address, for the given domains whose owner has one."""
    names = sorted(set(domains))
    found: dict[str, str] = {}
    for start in range(0, len(names), 500):      # bounded IN lists
        chunk = names[start:start + 500]
        async with conn.execute(
                'SELECT d.name, u.email FROM domain d JOIN "user" u ON u.id = d.owner_id'
                f" WHERE u.enabled = 1 AND u.email IS NOT NULL AND d.name IN ({', '.join('?' * len(chunk))})",
                chunk) as cur:
            found.update({r[0]: r[1] for r in await cur.fetchall()})
    return found


# -- messages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    id: int
    node: str
    at: str
    event: str
    subject: str
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    delivered_at: str | None
    title: str
    payload: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "payload"} | {"text": self.payload.get("text", "")}


_COLUMNS = ("id, node, at, event, subject, channel, recipient, status, attempts, next_attempt_at, last_error,"
            " delivered_at, title, payload")


def _notice(r: Any) -> Notice:
    return Notice(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]), r[9], r[10], r[11], r[12],
                  json.loads(r[13]))


async def add(conn: Connection, node: str, *, event: str, subject: str, channel: str, recipient: str,
              title: str, payload: dict[str, Any], now: str) -> int:
    """Queue one message (status pending, due now), audited."""
    cur = await conn.execute(
        "INSERT INTO notification (node, at, event, subject, channel, recipient, status, attempts,"
        " next_attempt_at, title, payload) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
        (node, now, event, subject, channel, recipient, NoticeStatus.PENDING, now, title, json.dumps(payload)))
    notice_id = await db.returned_id(cur)
    await audit.record(conn, ACTOR, "send", "notification", f"{channel}:{recipient}", None,
                       {"id": notice_id, "event": event, "subject": subject, "title": title})
    return notice_id


async def by_ids(conn: Connection, ids: list[int]) -> list[Notice]:
    """These messages as stored now, in the order asked."""
    async with conn.execute(f"SELECT {_COLUMNS} FROM notification WHERE id IN ({', '.join('?' * len(ids))})",
                            ids) as cur:
        found = {n.id: n for n in map(_notice, await cur.fetchall())}
    return [found[i] for i in ids if i in found]


async def due(conn: Connection, node: str, now: str) -> list[Notice]:
    """This node's messages waiting for a (first or next) attempt, oldest first."""
    async with conn.execute(
            f"SELECT {_COLUMNS} FROM notification WHERE node = ? AND status IN (?, ?) AND next_attempt_at <= ?"
            " ORDER BY id", (node, NoticeStatus.PENDING, NoticeStatus.RETRYING, now)) as cur:
        return [_notice(r) for r in await cur.fetchall()]


async def attempted(conn: Connection, notice: Notice, *, error: str | None, now: str,
                    retry_at: str | None) -> str:
    """Record one attempt: delivered (error None), retrying (a retry_at), or failed for good.
    Returns the new status."""
    attempts = notice.attempts + 1
    if error is None:
        status, next_at = NoticeStatus.DELIVERED, None
    else:
        status, next_at = (NoticeStatus.RETRYING, retry_at) if retry_at else (NoticeStatus.FAILED, None)
    async with db.transaction(conn):
        await conn.execute(
            "UPDATE notification SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,"
            " delivered_at = ? WHERE id = ?",
            (status, attempts, next_at, error[:500] if error else notice.last_error,
             now if error is None else None, notice.id))
        if status != NoticeStatus.RETRYING:
            await audit.record(conn, ACTOR, str(status), "notification", f"{notice.channel}:{notice.recipient}",
                               {"id": notice.id, "status": notice.status},
                               {"id": notice.id, "status": str(status), "attempts": attempts,
                                **({"error": error[:500]} if error else {})})
    return status


async def listing(conn: Connection, *, limit: int = 50, offset: int = 0, status: str | None = None,
                  channel: str | None = None) -> tuple[int, list[Notice]]:
    """(total, a page of messages newest first), optionally of one status or channel."""
    terms, args = [], []
    for column, value in (("status", status), ("channel", channel)):
        if value:
            terms.append(f"{column} = ?")
            args.append(value)
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    async with conn.execute(f"SELECT count(*) FROM notification{where}", args) as cur:
        total = int((await db.one_row(cur))[0])
    async with conn.execute(f"SELECT {_COLUMNS} FROM notification{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                            (*args, limit, offset)) as cur:
        return total, [_notice(r) for r in await cur.fetchall()]


async def last_attempts(conn: Connection) -> dict[str, Notice]:
    """Each channel's most recently attempted message (its state: delivered, retrying, failed)."""
    found: dict[str, Notice] = {}
    async with conn.execute(
            f"SELECT {_COLUMNS} FROM notification WHERE id IN (SELECT max(id) FROM notification"
            " WHERE attempts > 0 GROUP BY channel)") as cur:
        for r in await cur.fetchall():
            notice = _notice(r)
            found[notice.channel] = notice
    return found


async def waiting(conn: Connection) -> dict[str, int]:
    """Messages per channel still waiting for a retry."""
    async with conn.execute("SELECT channel, count(*) FROM notification WHERE status = ? GROUP BY channel",
                            (NoticeStatus.RETRYING,)) as cur:
        return {r[0]: int(r[1]) for r in await cur.fetchall()}


async def prune(conn: Connection, before: str) -> None:
    """Forget messages older than ``before`` that are finished (delivered or failed)."""
    await conn.execute("DELETE FROM notification WHERE at < ? AND status IN (?, ?)",
                       (before, NoticeStatus.DELIVERED, NoticeStatus.FAILED))
