"""Server-side panel sessions: revocable, expiring, with a CSRF token bound to each.

The browser holds a random token; the database holds only its SHA-256 (the token has 256 bits
of entropy, so a fast hash is enough and a stolen database signs no one in).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


from mrod.infra.dbapi import Connection
from mrod.infra import db

# last_seen is written at most this often per session (a write per page view is waste).
TOUCH_EVERY = timedelta(seconds=60)
MAX_FLASH = 5


@dataclass(frozen=True)
class Session:
    id: int
    user_id: int
    csrf_token: str
    created_at: str
    last_seen: str
    expires_at: str
    remote: str | None
    user_agent: str | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


async def create(conn: Connection, user_id: int, hours: float, *, remote: str | None = None,
                 user_agent: str | None = None) -> tuple[str, Session]:
    """A new session: (the token for the cookie, the session)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    row = (digest(token), user_id, csrf, db.stamp(now), db.stamp(now), db.stamp(now + timedelta(hours=hours)),
           remote, (user_agent or "")[:200] or None)
    async with db.transaction(conn):
        cur = await conn.execute(
            "INSERT INTO session (token_hash, user_id, csrf_token, created_at, last_seen, expires_at, remote,"
            " user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", row)
        session_id = await db.returned_id(cur)
    return token, Session(session_id, *row[1:])


async def lookup(conn: Connection, token: str | None) -> Session | None:
    """The live session for a cookie token (None: unknown, expired, or its user is disabled)."""
    if not token or len(token) > 200:
        return None
    now = datetime.now(timezone.utc)
    async with conn.execute(
        "SELECT s.id, s.user_id, s.csrf_token, s.created_at, s.last_seen, s.expires_at, s.remote, s.user_agent"
        ' FROM session s JOIN "user" u ON u.id = s.user_id WHERE s.token_hash = ? AND u.enabled = 1',
        (digest(token),)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    session = Session(*row)
    if db.parse_stamp(session.expires_at) <= now:
        await end(conn, session.id)
        return None
    if now - db.parse_stamp(session.last_seen) >= TOUCH_EVERY:
        async with db.transaction(conn):
            await conn.execute("UPDATE session SET last_seen = ? WHERE id = ?", (db.stamp(now), session.id))
    return session


async def end(conn: Connection, session_id: int) -> None:
    async with db.transaction(conn):
        await conn.execute("DELETE FROM session WHERE id = ?", (session_id,))


async def end_all(conn: Connection, user_id: int, *, except_id: int | None = None) -> int:
    async with db.transaction(conn):
        cur = await conn.execute("DELETE FROM session WHERE user_id = ? AND id IS DISTINCT FROM ?",
                                 (user_id, except_id))
    return cur.rowcount


async def list_for(conn: Connection, user_id: int) -> list[Session]:
    async with conn.execute(
        "SELECT id, user_id, csrf_token, created_at, last_seen, expires_at, remote, user_agent FROM session"
        " WHERE user_id = ? AND expires_at > ? ORDER BY last_seen DESC", (user_id, db.now())) as cur:
        return [Session(*r) for r in await cur.fetchall()]


async def purge_expired(conn: Connection) -> int:
    async with db.transaction(conn):
        cur = await conn.execute("DELETE FROM session WHERE expires_at <= ?", (db.now(),))
    return cur.rowcount


# -- flash messages: shown once, on the next page the session sees --------------------------


async def flash(conn: Connection, session_id: int, category: str, message: str) -> None:
    async with db.transaction(conn):
        async with conn.execute("SELECT flash FROM session WHERE id = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return
        items = json.loads(row[0]) if row[0] else []
        items = (items + [[category, message]])[-MAX_FLASH:]
        await conn.execute("UPDATE session SET flash = ? WHERE id = ?", (json.dumps(items), session_id))


async def take_flashes(conn: Connection, session_id: int) -> list[tuple[str, str]]:
    async with conn.execute("SELECT flash FROM session WHERE id = ?", (session_id,)) as cur:
        row = await cur.fetchone()
    if row is None or not row[0]:
        return []
    async with db.transaction(conn):
        await conn.execute("UPDATE session SET flash = NULL WHERE id = ?", (session_id,))
    return [(c, m) for c, m in json.loads(row[0])]
