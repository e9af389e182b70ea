"""Panel users and their permissions; passwords hashed with bcrypt, always off the event loop.

An admin has every permission. ``domains_own`` / ``relay_own`` limit a user to the domains /
relays they own. A password change, a disabled account or a removed user ends every session
of that user in the same transaction (API tokens are separate credentials and stay).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

import bcrypt

from mrod.infra.dbapi import Connection, Row
from mrod.entities import audit
from mrod.infra import db, names
from mrod.entities.audit import Actor
from mrod.infra.enums import PERMISSIONS, Permission
from mrod.infra.errors import Conflict, InvalidInput, MrodError, NotFound, UniqueViolation

FIRST_ADMIN = "admin"
MIN_PASSWORD = 10
MAX_PASSWORD_BYTES = 72          # bcrypt reads no further; longer passwords are refused, not cut
DEFAULT_ROUNDS = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    is_admin: bool
    enabled: bool
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    created_at: str = ""
    updated_at: str = ""
    # The contact address notifications about the user's own domains go to (mrod/notify).
    email: str | None = None

    def has(self, permission: Permission) -> bool:
        return self.is_admin or permission in self.permissions

    def effective(self) -> list[Permission]:
        return list(PERMISSIONS) if self.is_admin else [p for p in PERMISSIONS if p in self.permissions]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "is_admin": self.is_admin, "enabled": self.enabled,
                "permissions": sorted(self.permissions), "created_at": self.created_at,
                "updated_at": self.updated_at, "email": self.email}


class LastAdmin(MrodError):
    """The change would leave no enabled admin."""


def username(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.match(value.strip()):
        raise InvalidInput(field, "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return value.strip()


def password(value: object, field: str = "password") -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        raise InvalidInput(field, f"must be at least {MIN_PASSWORD} characters")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidInput(field, f"must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt reads no further)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def contact(value: object, field: str = "email") -> str:
    """A contact address (user@domain), or "" for none."""
    if isinstance(value, str) and value.strip() in ("", "none"):
        return ""
    found = names.address(value, field)
    if found.startswith("@"):
        raise InvalidInput(field, f"{value!r} must be an address such as 'owner@example.net' (or none)")
    return found


def permissions(values: Iterable[object], field: str = "permissions") -> frozenset[Permission]:
    out: set[Permission] = set()
    for value in values:
        if value not in PERMISSIONS:
            raise InvalidInput(field, f"{value!r} is not one of {', '.join(PERMISSIONS)}")
        out.add(Permission(str(value)))
    return frozenset(out)


async def hash_password(plain: str, rounds: int = DEFAULT_ROUNDS) -> str:
    # bcrypt takes ~0.25 s at cost 12: never on the event loop.
    return (await asyncio.to_thread(bcrypt.hashpw, plain.encode("utf-8"), bcrypt.gensalt(rounds))).decode("ascii")


async def check_password(plain: str, hashed: str) -> bool:
    try:
        return await asyncio.to_thread(bcrypt.checkpw, plain.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:      # a malformed stored hash, or a password bcrypt refuses
        return False


# A hash of nothing anyone knows, checked for unknown users so that a wrong user name takes
# as long as a wrong password (no user enumeration by timing).
_DUMMY: dict[int, str] = {}


async def _dummy_hash(rounds: int) -> str:
    if rounds not in _DUMMY:
        _DUMMY[rounds] = await hash_password(secrets.token_hex(16), rounds)
    return _DUMMY[rounds]


# The permissions are read with a second query rather than aggregated in SQL: the two
# engines spell a string aggregate differently (group_concat / string_agg).
_SELECT = 'SELECT u.id, u.name, u.is_admin, u.enabled, u.created_at, u.updated_at, u.email FROM "user" u'


def _user(row: Row, perms: Iterable[str]) -> User:
    return User(row["id"], row["name"], bool(row["is_admin"]), bool(row["enabled"]),
                frozenset(Permission(p) for p in perms),
                row["created_at"], row["updated_at"], row["email"])


async def get(conn: Connection, ref: str | int) -> User:
    """By name (case-insensitive) or id."""
    sql, arg = (f"{_SELECT} WHERE u.id = ?", ref) if isinstance(ref, int) else (f"{_SELECT} WHERE u.name = ?", ref)
    async with conn.execute(sql, (arg,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"user {ref!r} does not exist")
    async with conn.execute("SELECT name FROM permission WHERE user_id = ?", (row["id"],)) as cur:
        return _user(row, (p[0] for p in await cur.fetchall()))


async def list_all(conn: Connection) -> list[User]:
    async with conn.execute(f"{_SELECT} ORDER BY u.name") as cur:
        rows = list(await cur.fetchall())
    perms: dict[int, list[str]] = {}
    async with conn.execute("SELECT user_id, name FROM permission") as cur:
        for user_id, name in await cur.fetchall():
            perms.setdefault(user_id, []).append(name)
    return [_user(r, perms.get(r["id"], ())) for r in rows]


async def count(conn: Connection) -> int:
    async with conn.execute('SELECT count(*) FROM "user"') as cur:
        return (await db.one_row(cur))[0]


async def authenticate(conn: Connection, name: str, plain: str, rounds: int = DEFAULT_ROUNDS) -> User | None:
    """The enabled user with this name and password, else None — the same work either way."""
    async with conn.execute('SELECT id, password_hash, enabled FROM "user" WHERE name = ?', (name.strip(),)) as cur:
        row = await cur.fetchone()
    if row is None or not isinstance(plain, str) or len(plain.encode("utf-8")) > MAX_PASSWORD_BYTES:
        await check_password(plain if isinstance(plain, str) else "", await _dummy_hash(rounds))
        return None
    if not await check_password(plain, row["password_hash"]) or not row["enabled"]:
        return None
    return await get(conn, row["id"])


def _audited(user: User) -> dict[str, Any]:
    return {"name": user.name, "is_admin": user.is_admin, "enabled": user.enabled,
            "permissions": sorted(user.permissions), "email": user.email}


async def _set_permissions(conn: Connection, user_id: int, perms: frozenset[str]) -> None:
    await conn.execute("DELETE FROM permission WHERE user_id = ?", (user_id,))
    await conn.executemany("INSERT INTO permission (user_id, name) VALUES (?, ?)",
                           [(user_id, p) for p in sorted(perms)])


async def add(conn: Connection, actor: Actor, name: str, plain: str, *, is_admin: bool = False,
              perms: Iterable[str] = (), enabled: bool = True, rounds: int = DEFAULT_ROUNDS) -> User:
    name = username(name)
    perms = permissions(perms)
    hashed = await hash_password(password(plain), rounds)
    stamp = db.now()
    async with db.transaction(conn):
        try:
            cur = await conn.execute(
                'INSERT INTO "user" (name, password_hash, is_admin, enabled, created_at, updated_at)'
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id", (name, hashed, int(is_admin), int(enabled), stamp, stamp))
        except UniqueViolation:
            raise Conflict(f"user {name!r} already exists") from None
        user_id = await db.returned_id(cur)
        await _set_permissions(conn, user_id, perms)
        user = await get(conn, user_id)
        await audit.record(conn, actor, "add", "user", user.name, None, _audited(user))
    return user


async def update(conn: Connection, actor: Actor, ref: str | int, *, is_admin: bool | None = None,
                 enabled: bool | None = None, perms: Iterable[str] | None = None,
                 email: str | None = None) -> User:
    """``email``: the contact address for notifications ("" removes it; None: unchanged)."""
    new_perms = None if perms is None else permissions(perms)
    new_email = None if email is None else contact(email)
    async with db.transaction(conn):
        before = await get(conn, ref)
        admins = await _admins(conn)
        changes: dict[str, Any] = {}
        if is_admin is not None and is_admin != before.is_admin:
            changes["is_admin"] = int(is_admin)
        if enabled is not None and enabled != before.enabled:
            changes["enabled"] = int(enabled)
        if new_email is not None and (new_email or None) != before.email:
            changes["email"] = new_email or None
        if new_perms is not None and new_perms != before.permissions:
            await _set_permissions(conn, before.id, new_perms)
        elif not changes:
            return before
        if changes:
            await conn.execute(f"UPDATE \"user\" SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                               (*changes.values(), before.id))
        await conn.execute('UPDATE "user" SET updated_at = ? WHERE id = ?', (db.now(), before.id))
        await _keep_an_admin(conn, admins)
        if enabled is False:
            await conn.execute("DELETE FROM session WHERE user_id = ?", (before.id,))
        after = await get(conn, before.id)
        await audit.record(conn, actor, "update", "user", after.name, _audited(before), _audited(after))
    return after


async def set_password(conn: Connection, actor: Actor, ref: str | int, plain: str, *,
                       rounds: int = DEFAULT_ROUNDS, keep_session: int | None = None) -> User:
    """Change a password and end every session of the user (but ``keep_session``, the id of
    the session that made the change, when a user changes their own)."""
    hashed = await hash_password(password(plain), rounds)
    async with db.transaction(conn):
        user = await get(conn, ref)
        await conn.execute('UPDATE "user" SET password_hash = ?, updated_at = ? WHERE id = ?',
                           (hashed, db.now(), user.id))
        await conn.execute("DELETE FROM session WHERE user_id = ? AND id IS DISTINCT FROM ?", (user.id, keep_session))
        await audit.record(conn, actor, "passwd", "user", user.name, None, {"password": "changed"})
    return user


async def remove(conn: Connection, actor: Actor, ref: str | int) -> User:
    async with db.transaction(conn):
        user = await get(conn, ref)
        admins = await _admins(conn)
        await conn.execute('DELETE FROM "user" WHERE id = ?', (user.id,))
        await _keep_an_admin(conn, admins)
        await audit.record(conn, actor, "remove", "user", user.name, _audited(user), None)
    return user


async def _admins(conn: Connection) -> int:
    async with conn.execute('SELECT count(*) FROM "user" WHERE is_admin = 1 AND enabled = 1') as cur:
        return (await db.one_row(cur))[0]


async def _keep_an_admin(conn: Connection, before: int) -> None:
    """Refuse (inside the change's transaction, so it rolls back) to take away the last
    enabled admin."""
    if before and not await _admins(conn):
        raise LastAdmin("this would leave no enabled admin; make another user admin first")


async def ensure_first_admin(conn: Connection, rounds: int = DEFAULT_ROUNDS) -> str | None:
    """With no user at all, create ``admin`` with a random password and return it (to be shown
    once); otherwise None. There is no default password."""
    if await count(conn):
        return None
    plain = secrets.token_urlsafe(15)
    try:
        await add(conn, Actor.system("first start"), FIRST_ADMIN, plain, is_admin=True, rounds=rounds)
    except Conflict:        # another process made it first
        return None
    return plain
