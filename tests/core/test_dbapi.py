"""Both engines' adapters of mrod.infra.dbapi raise mrod's own errors, so callers catch one
error class on either engine instead of reading a driver's wording."""

from __future__ import annotations

import pytest

from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.errors import DatabaseUnreachable, ForeignKeyViolation, IntegrityViolation, UniqueViolation

_RELAY = "INSERT INTO relay (name, host, owner_id, port, created_at, updated_at) VALUES (?, 'mx.example', ?, ?, 'x', 'x')"


async def test_constraint_errors_are_mrods_own(conn: Connection) -> None:
    await conn.execute(_RELAY, ("primary", None, 25))
    with pytest.raises(UniqueViolation) as duplicate:
        await conn.execute(_RELAY, ("PRIMARY", None, 25))       # NOCASE on both engines
    assert "relay" in duplicate.value.constraint
    with pytest.raises(ForeignKeyViolation):
        await conn.execute(_RELAY, ("backup", 4711, 25))
    with pytest.raises(IntegrityViolation) as check:
        await conn.execute(_RELAY, ("backup", None, 0))
    assert not isinstance(check.value, (UniqueViolation, ForeignKeyViolation))
    with pytest.raises(UniqueViolation):
        async with db.transaction(conn):
            await conn.executemany(_RELAY, [("second", None, 25), ("Second", None, 25)])
    async with conn.execute("SELECT name FROM relay ORDER BY name") as cur:
        assert [r["name"] for r in await cur.fetchall()] == ["primary"]


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_a_lock_held_past_the_busy_timeout_is_an_unavailable_database(cfg: Config) -> None:
    holder, waiter = await db.connect(cfg.database), await db.connect(cfg.database)
    try:
        await holder.execute("BEGIN IMMEDIATE")
        await waiter.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(DatabaseUnreachable, match="is busy"):
            await waiter.execute("BEGIN IMMEDIATE")
        await holder.execute("ROLLBACK")
    finally:
        await holder.close()
        await waiter.close()
