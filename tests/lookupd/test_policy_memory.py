"""lookupd's policy decides from memory (issue 23.3): a plain domain's request reads no database
— the policy's own database session is never even opened — while paused, quota and verify
domains still go to the database; and the mode while the primary is up (issue 20.1) follows
this node's health states as lookupd keeps them in memory. Both engines."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.lookupd.daemon import Lookupd
from tests.conftest import make_config
from tests.data import seed
from tests.lookupd.test_policy_listener import ask

pytestmark = pytest.mark.both_engines

DEFER = "DEFER_IF_PERMIT This is a backup MX for {}; deliver to its primary mail server"


async def _health(conn: Connection, relay: str, state: str, age: float = 0.0) -> None:
    probed = db.stamp(datetime.now(timezone.utc) - timedelta(seconds=age))
    async with conn.execute("SELECT id FROM relay WHERE name = ?", (relay,)) as cur:
        (rid,) = await cur.fetchone()
    async with db.transaction(conn):
        await conn.execute("DELETE FROM relay_health WHERE relay_id = ? AND node = ?", (rid, "n1"))
        await conn.execute("INSERT INTO relay_health (relay_id, node, state, last_probe_at) VALUES (?, ?, ?, ?)",
                           (rid, "n1", state, probed))


async def _until(reader, writer, recipient: str, expected: str, **extra: str) -> str:
    for _ in range(100):          # the health states are read every second
        answer = await ask(reader, writer, recipient, **extra)
        if answer == expected:
            return answer
        await asyncio.sleep(0.05)
    return answer


async def test_decisions_from_memory(tmp_path: Path, database: dict[str, str]) -> None:
    cfg = make_config(tmp_path, node={"name": "n1"}, lookupd={"socketmap": "", "policy": "127.0.0.1:0"},
                      policy={"exempt_networks": ["203.0.113.0/24"]})
    async with db.opened(cfg.database, create=True) as conn:
        await seed(conn, relays=[dict(name="primary", host="127.0.0.1", port=2525, when_primary_up="defer"),
                                 dict(name="other", host="127.0.0.2", port=2525)],
                   domains=[dict(name="plain.example", relay="primary"),
                            dict(name="open.example", relay="other"),
                            dict(name="paused.example", relay="primary", paused=True, pause_reason="moving")])
        await _health(conn, "primary", "up")
    daemon = Lookupd(cfg)
    await daemon.start()
    for _ in range(200):     # SQLite: the snapshot loads in the background (the database answers meanwhile)
        daemon.service.answer_now("relay_domains", b"plain.example")
        if daemon.service.snapshot_domains is not None and daemon.policy.primaries.reads:
            break
        await asyncio.sleep(0.02)
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    try:
        defer = DEFER.format("plain.example")
        assert await _until(r, w, "a@plain.example", defer) == defer
        assert await ask(r, w, "postmaster@plain.example") == "DUNNO"
        assert await ask(r, w, "a@plain.example", client_address="203.0.113.5") == "DUNNO"
        assert await ask(r, w, "a@open.example") == "DUNNO"
        assert daemon.policy.asked_database == 0        # none of these read the database
        assert await ask(r, w, "a@paused.example") == (
            "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: moving")
        assert daemon.policy.asked_database == 1        # a paused domain does, as before
        # The primary goes down: accepted (from memory, at the next read of the states).
        async with db.opened(cfg.database) as conn:
            await _health(conn, "primary", "down")
        assert await _until(r, w, "b@plain.example", "DUNNO") == "DUNNO"
        # Up again but its last probe is old (the monitor stopped): stale, accepted.
        async with db.opened(cfg.database) as conn:
            await _health(conn, "primary", "up", age=4 * cfg.health.interval)
            await _health(conn, "other", "up")
        await asyncio.sleep(1.5)
        assert await ask(r, w, "c@plain.example") == "DUNNO"
        # A mode change reaches the next request (journaled): the relay accepts, a domain defers.
        async with db.opened(cfg.database) as conn:
            async with db.transaction(conn):
                await conn.execute("UPDATE domain SET when_primary_up = 'defer' WHERE name = 'open.example'")
        assert await _until(r, w, "d@open.example", DEFER.format("open.example")) == DEFER.format("open.example")
        counted = daemon.policy.decisions
        assert counted["primary-up-defer"] >= 2 and counted["postmaster"] == 1 and counted["exempt-client"] == 1
        assert counted["primary-down-accept"] >= 1 and counted["health-unknown-accept"] >= 1
    finally:
        w.close()
        await daemon.stop()
