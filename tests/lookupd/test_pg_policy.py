"""The policy service on PostgreSQL (issue 11): decisions read the shared database, callout
results are written to it. Real PostgreSQL, a real SMTP primary on loopback."""

from __future__ import annotations

import asyncio
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
from tests.harness.primary import KnownRecipients, Primary
from tests.lookupd.test_policy_listener import ask


@pytest.fixture
def primary() -> Any:
    handler = KnownRecipients({"joe@verify.example"})
    server = Primary(handler)
    server.start()
    yield server, handler
    server.stop()


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
