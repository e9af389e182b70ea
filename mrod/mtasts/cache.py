"""The mta_sts table (migration 0017): the cached MTA-STS policy and DANE verdict of each
destination domain, and the finished tls_policy answer lookupd gives for it. The one writer of
the table; a change of the answer is audited (and journaled by the table's triggers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mrod.entities import audit
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.mtasts.policy import Policy

ACTOR = Actor.system("mta-sts")
COLUMNS = "domain, policy_id, mode, mx, max_age, fetched_at, expires_at, dane, answer, checked_at, error"


@dataclass(frozen=True)
class Cached:
    domain: str
    policy_id: str | None
    mode: str | None
    mx: tuple[str, ...]
    max_age: int | None
    fetched_at: str | None
    expires_at: str | None
    dane: bool
    answer: str | None
    checked_at: str | None
    error: str | None

    @property
    def policy(self) -> Policy | None:
        return None if self.mode is None or self.max_age is None else Policy(self.mode, self.mx, self.max_age)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["mx"] = list(self.mx)
        return found


def _cached(row: Any) -> Cached:
    mx = tuple(p for p in (row[3] or "").split("\n") if p)
    return Cached(row[0], row[1], row[2], mx, row[4], row[5], row[6], bool(row[7]), row[8], row[9], row[10])


async def all_cached(conn: Connection, *, owner_id: int | None = None) -> list[Cached]:
    """Every row, by domain (``owner_id``: only that owner's domains)."""
    args: tuple[int, ...] = ()
    if owner_id is None:
        sql = f"SELECT {COLUMNS} FROM mta_sts ORDER BY domain"
    else:
        columns = ", ".join(f"m.{c.strip()}" for c in COLUMNS.split(","))
        sql, args = (f"SELECT {columns} FROM mta_sts m JOIN domain d ON d.name = m.domain"
                     " WHERE d.owner_id = ? ORDER BY m.domain", (owner_id,))
    async with conn.execute(sql, args) as cur:
        return [_cached(r) for r in await cur.fetchall()]


async def cached(conn: Connection, domain: str) -> Cached | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM mta_sts WHERE domain = ?", (domain,)) as cur:
        row = await cur.fetchone()
    return None if row is None else _cached(row)


async def save(conn: Connection, entry: Cached) -> None:
    """Insert or replace the domain's row; an answer that changes is audited."""
    async with db.transaction(conn):
        before = await cached(conn, entry.domain)
        await conn.execute(
            f"INSERT INTO mta_sts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, mode = excluded.mode,"
            " mx = excluded.mx, max_age = excluded.max_age, fetched_at = excluded.fetched_at,"
            " expires_at = excluded.expires_at, dane = excluded.dane, answer = excluded.answer,"
            " checked_at = excluded.checked_at, error = excluded.error",
            (entry.domain, entry.policy_id, entry.mode, "\n".join(entry.mx), entry.max_age, entry.fetched_at,
             entry.expires_at, int(entry.dane), entry.answer, entry.checked_at, entry.error))
        if (before.answer if before else None) != entry.answer:
            await audit.record(conn, ACTOR, "update", "mta_sts", entry.domain,
                               {"answer": before.answer} if before else None, {"answer": entry.answer})


async def forget(conn: Connection, keep: set[str]) -> list[str]:
    """Remove the rows of domains no longer checked (removed, disabled); their names."""
    async with conn.execute("SELECT domain, answer FROM mta_sts") as cur:
        gone = [(r[0], r[1]) for r in await cur.fetchall() if r[0] not in keep]
    if gone:
        async with db.transaction(conn):
            await conn.executemany("DELETE FROM mta_sts WHERE domain = ?", [(d,) for d, _ in gone])
            for name, answer in gone:
                if answer is not None:
                    await audit.record(conn, ACTOR, "delete", "mta_sts", name, {"answer": answer}, None)
    return [d for d, _ in gone]
