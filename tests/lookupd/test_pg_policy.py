"""The policy service on PostgreSQL (issue 11): decisions read the shared database, callout
results are written to it. Real PostgreSQL, a real SMTP primary on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator

import psycopg
import pytest

from mrod.infra import db
from mrod.infra.engine import Target
from mrod.lookupd.daemon import Lookupd
from tests.conftest import make_config
from tests.data import seed
from tests.harness import postgres
from tests.lookupd.conftest import SocketmapClient
from tests.lookupd.test_policy_listener import ask


@pytest.fixture
async def daemon(tmp_path: Path, primary: Any, pg_database: tuple[postgres.Cluster, str]) -> AsyncIterator[Lookupd]:
    server, name = pg_database
    target = Target(url=server.url(name), password_file=str(server.password_file))
    async with db.opened(target) as conn:
        await seed(conn, relays=[dict(name="primary", host="127.0.0.1", port=primary[0].port)],
                   domains=[dict(name="verify.example", relay="primary", recipients="verify",
                                 verify_when_down="defer"),
                            dict(name="paused.example", relay="primary", paused=True, pause_reason="maintenance")])
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file},
                      lookupd={"socketmap": "", "policy": "127.0.0.1:0"}, policy={"callout_timeout": 3.0})
    d = Lookupd(cfg)
    await d.start()
    yield d
    await d.stop()


async def test_policy_decisions_and_callout_results_on_postgresql(
        daemon: Lookupd, primary: Any, pg_database: tuple[postgres.Cluster, str]) -> None:
    _, handler = primary
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    try:
        assert await ask(r, w, "a@paused.example") == \
            "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: maintenance"
        assert await ask(r, w, "a@unrelated.example") == "DUNNO"
        assert await ask(r, w, "joe@verify.example") == "DUNNO"
        assert await ask(r, w, "nobody@verify.example") == "550 5.1.1 User unknown at the primary mail server"
        server, name = pg_database
        with psycopg.connect(server.url(name), password=server.password) as conn:
            cached: dict[str, int] = dict(conn.execute("SELECT address, valid FROM verify_cache").fetchall())
        assert cached == {"joe@verify.example": 1, "nobody@verify.example": 0}
        assert await ask(r, w, "joe@verify.example") == "DUNNO"       # from the shared cache
        assert handler.asked == ["joe@verify.example", "nobody@verify.example"]
    finally:
        w.close()


@pytest.mark.parametrize("choice, expected", [
    ("accept", "DUNNO"),
    ("defer", "DEFER_IF_PERMIT The backup MX cannot reach its database; try again later"),
])
async def test_policy_answers_as_configured_while_postgresql_is_gone(
        tmp_path: Path, private_cluster: postgres.Cluster, choice: str, expected: str) -> None:
    """Stopped, then hung (every process SIGSTOPped: what a partition looks like): the policy
    answers ``[policy] when_database_unreachable`` — never a silent close, which Postfix would
    turn into a 451 for every recipient — and the lookups beside it never wait for it."""
    server = private_cluster
    target = Target(url=server.url(server.new_database()), password_file=str(server.password_file))
    async with db.opened(target) as conn:
        await seed(conn, relays=[dict(name="primary", host="127.0.0.1", port=2525)],
                   domains=[dict(name="paused.example", relay="primary", paused=True, pause_reason="maintenance")])
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file},
                      lookupd={"socketmap": "127.0.0.1:0", "policy": "127.0.0.1:0", "lookup_deadline": 1.0},
                      policy={"when_database_unreachable": choice})
    daemon = Lookupd(cfg)
    await daemon.start()
    paused = "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: maintenance"
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    lookups = await SocketmapClient.connect(daemon.listener("socketmap").port)
    try:
        assert await ask(r, w, "a@paused.example") == paused
        server.pause()
        assert await ask(r, w, "a@paused.example") == expected
        assert await ask(r, w, "b@paused.example") == expected        # the same connection goes on
        reason = "database-unreachable" if choice == "accept" else "database-unreachable-defer"
        assert daemon.policy.decisions[reason] == 2
        server.resume()
        assert await _until_answer(r, w, "a@paused.example", paused) == paused    # back by itself
        server.freeze()
        try:
            decision = asyncio.ensure_future(ask(r, w, "a@paused.example"))
            started = time.monotonic()
            # While the decision waits for the hung server, lookups are answered (the event
            # loop is not the one waiting).
            assert await lookups.ask("relay_domains", "paused.example") == "OK paused.example"
            assert time.monotonic() - started < 0.5
            assert await decision == expected           # after the deadline (1 s)
            assert await ask(r, w, "a@paused.example") == expected    # at once: not tried again yet
        finally:
            server.thaw()
        assert await _until_answer(r, w, "a@paused.example", paused) == paused
    finally:
        w.close()
        await lookups.close()
        await daemon.stop()


async def _until_answer(r: asyncio.StreamReader, w: asyncio.StreamWriter, recipient: str, wanted: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        got = await ask(r, w, recipient)
        if got == wanted or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)
