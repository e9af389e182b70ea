"""Login throttling: failed sign-ins (wrong passwords and wrong two-factor codes alike) are
counted per address and per user name typed; too many within a window block that address or
name for a while. Blocks are listed on the blocklist page, where they can be lifted early.

Unknown user names are counted like known ones, so a block says nothing about which names
exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


from mrod.infra.dbapi import Connection
from mrod.entities import audit
from mrod.infra import db
from mrod.entities.audit import Actor
from mrod.infra.errors import NotFound

# Failures older than this are deleted (the window is minutes; this keeps a day for the page).
KEEP_FAILURES = timedelta(days=1)
MAX_USERNAME = 64      # longer typed names are cut before they are counted


@dataclass(frozen=True)
class Rules:
    window: timedelta
    max_ip: int
    max_user: int
    block_for: timedelta

    @classmethod
    def from_config(cls, admin: object) -> "Rules":
        return cls(timedelta(minutes=admin.login_window_minutes), admin.login_max_failures_ip,  # type: ignore[attr-defined]
                   admin.login_max_failures_user, timedelta(minutes=admin.login_block_minutes))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Block:
    id: int
    kind: str          # one of enums.BLOCK_KINDS: 'ip' or 'user'
    value: str
    created_at: str
    until: str
    failures: int
    lifted_at: str | None
    lifted_by: str | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


_BLOCK = "SELECT id, kind, value, created_at, until, failures, lifted_at, lifted_by FROM login_block"


async def blocked(conn: Connection, remote: str, username: str) -> Block | None:
    """The active block that stops this sign-in, if any."""
    async with conn.execute(
        f"{_BLOCK} WHERE lifted_at IS NULL AND until > ? AND ((kind = 'ip' AND value = ?)"
        " OR (kind = 'user' AND value = ?)) ORDER BY until DESC LIMIT 1",
        (db.now(), remote, username.strip()[:MAX_USERNAME])) as cur:
        row = await cur.fetchone()
    return None if row is None else Block(*row)


async def failed(conn: Connection, rules: Rules, remote: str, username: str) -> list[Block]:
    """Count a failed sign-in; returns the blocks it started (if it crossed a limit)."""
    name = username.strip()[:MAX_USERNAME]
    now = _now()
    since = db.stamp(now - rules.window)
    started = []
    async with db.transaction(conn):
        await conn.execute("DELETE FROM login_failure WHERE at < ?", (db.stamp(now - KEEP_FAILURES),))
        await conn.execute("INSERT INTO login_failure (at, remote, username) VALUES (?, ?, ?)",
                           (db.stamp(now), remote, name))
        for kind, column, value, limit in (("ip", "remote", remote, rules.max_ip),
                                           ("user", "username", name, rules.max_user)):
            # Count only failures since the last block of this value ended, so a lifted
            # block gives a fresh allowance instead of re-blocking on the next try.
            async with conn.execute(
                f"SELECT count(*) FROM login_failure WHERE {column} = ? AND cleared_at IS NULL AND at >= ?"
                " AND at >= coalesce("
                "(SELECT max(coalesce(lifted_at, created_at)) FROM login_block WHERE kind = ? AND value = ?), '')",
                (value, since, kind, value)) as cur:
                count = (await db.one_row(cur))[0]
            if count >= limit:
                cur = await conn.execute(
                    "INSERT INTO login_block (kind, value, created_at, until, failures) VALUES (?, ?, ?, ?, ?)"
                    " RETURNING id", (kind, value, db.stamp(now), db.stamp(now + rules.block_for), count))
                block_id = await db.returned_id(cur)
                started.append(Block(block_id, kind, value, db.stamp(now), db.stamp(now + rules.block_for),
                                     count, None, None))
                await audit.record(conn, Actor.system("login throttle"), "block", "login_block", f"{kind}:{value}",
                                   None, {"kind": kind, "value": value, "failures": count,
                                          "until": db.stamp(now + rules.block_for)})
    return started


async def succeeded(conn: Connection, remote: str, username: str) -> None:
    """A good sign-in: that user's failures from that address stop counting towards a block.
    They stay listed (marked) — an operator should still see that someone guessed first."""
    async with db.transaction(conn):
        await conn.execute("UPDATE login_failure SET cleared_at = ? WHERE remote = ? AND username = ?"
                           " AND cleared_at IS NULL", (db.now(), remote, username.strip()[:MAX_USERNAME]))


async def active(conn: Connection) -> list[Block]:
    async with conn.execute(f"{_BLOCK} WHERE lifted_at IS NULL AND until > ? ORDER BY created_at DESC",
                            (db.now(),)) as cur:
        return [Block(*r) for r in await cur.fetchall()]


async def recent(conn: Connection, limit: int = 50) -> list[Block]:
    """Blocks that ended or were lifted, newest first."""
    async with conn.execute(f"{_BLOCK} WHERE lifted_at IS NOT NULL OR until <= ? ORDER BY id DESC LIMIT ?",
                            (db.now(), limit)) as cur:
        return [Block(*r) for r in await cur.fetchall()]


@dataclass(frozen=True)
class Failure:
    at: str
    remote: str
    username: str
    cleared_at: str | None       # when a good sign-in (same address and name) followed


async def failures(conn: Connection, limit: int = 50) -> list[Failure]:
    """The latest failed sign-ins, newest first."""
    async with conn.execute("SELECT at, remote, username, cleared_at FROM login_failure ORDER BY id DESC LIMIT ?",
                            (limit,)) as cur:
        return [Failure(*r) for r in await cur.fetchall()]


async def lift(conn: Connection, actor: Actor, block_id: int) -> Block:
    async with db.transaction(conn):
        async with conn.execute(f"{_BLOCK} WHERE id = ?", (block_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"block #{block_id} does not exist")
        block = Block(*row)
        if block.lifted_at is None:
            await conn.execute("UPDATE login_block SET lifted_at = ?, lifted_by = ? WHERE id = ?",
                               (db.now(), actor.name, block.id))
            await audit.record(conn, actor, "lift", "login_block", f"{block.kind}:{block.value}",
                               {"until": block.until, "failures": block.failures}, None)
    return block
