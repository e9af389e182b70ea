"""API tokens: bearer credentials for /api/v1, shown once at creation, stored hashed,
revocable, with the time and address of their last use.

A token reads ``mrod_<12 hex>_<secret>``; the 12 hex characters (the prefix) are stored in the
clear so lists can tell tokens apart, and the whole token only as SHA-256.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


from mrod.infra.dbapi import Connection
from mrod.entities import audit, users
from mrod.infra import db
from mrod.entities.audit import Actor
from mrod.infra.errors import InvalidInput, NotFound
from mrod.entities.sessions import digest

MAX_NAME = 64
MAX_TOKEN = 200


@dataclass(frozen=True)
class ApiToken:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    last_used_from: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


_COLUMNS = "id, user_id, name, prefix, created_at, last_used_at, last_used_from, revoked_at"


def token_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME \
            or any(ord(c) < 32 for c in value):
        raise InvalidInput("name", f"give the token a name of 1 to {MAX_NAME} characters (what uses it)")
    return value.strip()


async def create(conn: Connection, actor: Actor, user_id: int, name: str) -> tuple[str, ApiToken]:
    """(the token — shown once, never stored — and its record)."""
    name = token_name(name)
    prefix = secrets.token_hex(6)
    token = f"mrod_{prefix}_{secrets.token_urlsafe(32)}"
    async with db.transaction(conn):
        user = await users.get(conn, user_id)
        cur = await conn.execute(
            "INSERT INTO api_token (user_id, name, token_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (user.id, name, digest(token), prefix, db.now()))
        token_id = await db.returned_id(cur)
        await audit.record(conn, actor, "add", "api_token", f"{user.name}/{prefix}", None,
                           {"user": user.name, "name": name, "prefix": prefix})
        record = await get(conn, user.id, token_id)
    return token, record


async def get(conn: Connection, user_id: int, token_id: int) -> ApiToken:
    async with conn.execute(f"SELECT {_COLUMNS} FROM api_token WHERE id = ? AND user_id = ?",
                            (token_id, user_id)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"token #{token_id} does not exist")
    return ApiToken(*row)


async def list_for(conn: Connection, user_id: int) -> list[ApiToken]:
    async with conn.execute(f"SELECT {_COLUMNS} FROM api_token WHERE user_id = ? ORDER BY revoked_at IS NOT NULL,"
                            " created_at DESC, id DESC", (user_id,)) as cur:
        return [ApiToken(*r) for r in await cur.fetchall()]


async def revoke(conn: Connection, actor: Actor, user_id: int, token_id: int) -> ApiToken:
    async with db.transaction(conn):
        token = await get(conn, user_id, token_id)
        if token.revoked_at is None:
            await conn.execute("UPDATE api_token SET revoked_at = ? WHERE id = ?", (db.now(), token.id))
            user = await users.get(conn, user_id)
            await audit.record(conn, actor, "revoke", "api_token", f"{user.name}/{token.prefix}",
                               {"name": token.name, "prefix": token.prefix}, None)
        return await get(conn, user_id, token_id)


async def authenticate(conn: Connection, token: str, remote: str | None) -> users.User | None:
    """The enabled user a live token belongs to (and note its use), else None."""
    if not token or len(token) > MAX_TOKEN or not token.startswith("mrod_"):
        return None
    async with conn.execute("SELECT id, user_id, last_used_at, last_used_from FROM api_token"
                            " WHERE token_hash = ? AND revoked_at IS NULL", (digest(token),)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    user = await users.get(conn, row[1])
    if not user.enabled:
        return None
    now = db.now()
    if row[2] != now or row[3] != remote:   # at most one write per token per second
        async with db.transaction(conn):
            await conn.execute("UPDATE api_token SET last_used_at = ?, last_used_from = ? WHERE id = ?",
                               (now, remote, row[0]))
    return user
