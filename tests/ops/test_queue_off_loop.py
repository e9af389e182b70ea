"""A queue reading that waits on the database does not stall the panel process's event loop.

The panel's "Read the queue now" (and the queue job, in the same process) reads a real Postfix
queue — one message for many of mrod's domains — and classifies each recipient domain against
the route store. Here the store is slow on purpose: the test holds an ACCESS EXCLUSIVE lock on
the domain table, so the route store's queries wait. While PostgreSQL shows the reading waiting
for that lock, another panel page (which reads the database too, just not that table) must be
answered. Read on the loop, that page would only be answered once the wait had ended, and the
reading would no longer be seen waiting.

PostgreSQL only: a SQLite reader in WAL mode waits for nothing a test can hold while the
panel's own connections are open (an exclusive lock needs every other connection closed); the
SQLite store is read on the same worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Callable

import psycopg
import pytest

from mrod.admin.app import create_app
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.infra.engine import Target
from mrod.entities import users
from mrod.operations import queuestats
from tests.admin.conftest import PASSWORD, Panel
from tests.data import SYSTEM, seed
from tests.harness import free_port
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

DOMAINS = [f"d{n:02d}.example" for n in range(40)]
SLOW_RETRIES = {"queue_run_delay": "3600s", "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s"}
# The reading's connect timeout (lookup_deadline), and how long the test waits for it to reach the store.
STORE_WAIT = 10.0


class DomainTableLock:
    """ACCESS EXCLUSIVE on the domain table: the route store's queries wait for it."""

    def __init__(self, target: Target) -> None:
        self.conn = psycopg.connect(target.url, **target.connect_options("test-lock", 5.0))  # type: ignore[arg-type]  # libpq options as keywords
        # Should the reading hold the event loop, the loop cannot release the lock: the server
        # ends this session instead, so the test fails rather than hangs.
        self.conn.execute("SET idle_in_transaction_session_timeout = '20s'")
        self.conn.execute("LOCK TABLE domain IN ACCESS EXCLUSIVE MODE")

    def reader_waiting(self) -> bool:
        try:
            self.conn.execute("SELECT pg_stat_clear_snapshot()")      # else one view per transaction
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'").fetchone()
        except psycopg.OperationalError as exc:
            raise AssertionError(f"the event loop was held while the reading waited ({exc})") from None
        return bool(row and row[0])

    def release(self) -> None:
        with contextlib.suppress(psycopg.Error):      # a session the server ended has nothing to roll back
            self.conn.rollback()
        self.conn.close()


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_reading_waiting_on_the_database_leaves_the_panel_answering(
        aiohttp_client: Any, database: dict[str, str], mrod_factory: Any, postfix_factory: Any) -> None:
    mrod = mrod_factory(start=False, database=database, lookup_deadline=STORE_WAIT)
    async with db.opened(mrod.config.database) as conn:
        await seed(conn, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": name, "relay": "primary"} for name in DOMAINS])
        await users.add(conn, SYSTEM, "ops", PASSWORD, perms=("queue",), rounds=4)
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    recipients = [f"user@{name}" for name in DOMAINS]
    await asyncio.to_thread(postfix.smtp, recipients, payload("many domains", recipients[0]))
    await asyncio.to_thread(postfix.wait_for_queue, lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    mrod.stop()          # lookupd is done (the mail is queued); only the panel process runs now
    with open(mrod.config_path, "a") as fh:
        fh.write(f'\n[postfix]\nconfig_dir = "{postfix.etc}"\n[queue]\ntimeout = 60.0\n[admin]\nbcrypt_rounds = 4\n')
    cfg = configmod.load(mrod.config_path, env={})
    app = create_app(cfg)
    ops = Panel(await aiohttp_client(app))
    assert (await ops.login("ops")).status == 303
    other = Panel(await aiohttp_client(ops.client.server))
    assert (await other.login("ops")).status == 303

    lock = DomainTableLock(Target.of(cfg.database))
    try:
        reading = asyncio.create_task(ops.post("/queue/refresh"))      # "Read the queue now"
        assert await until(lock.reader_waiting, STORE_WAIT), "the reading never reached the route store"
        status, page = await other.get("/profile")
        assert status == 200
        assert "ops" in page
        # Answered while the reading still waits in the database, not after it gave up or ended.
        assert not reading.done()
        assert lock.reader_waiting()
    finally:
        lock.release()
    status, _, _ = await asyncio.wait_for(reading, 60)
    assert status == 303
    status, page = await ops.get("/queue")
    assert "Queue read: 1 message(s)" in page
    async with db.opened(cfg.database) as conn:
        assert sorted(row["domain"] for row in await queuestats.stats(conn)) == DOMAINS
