"""The panel on a PostgreSQL that stops answering (SIGSTOP: the kernel still accepts and
acknowledges, nothing answers — what a hung server or a partition looks like to a client):
a request is answered 503 within ``[database] answer_timeout``, not held for the kernel's
~15 minutes; when the server answers again, so does the panel."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp.test_utils import TestClient

from mrod.admin.app import create_app
from mrod.entities import users
from mrod.infra import db
from tests.admin.conftest import PASSWORD, Panel
from tests.conftest import make_config
from tests.data import SYSTEM
from tests.harness import postgres

DEADLINE = 2.0     # [database] answer_timeout for this test (the default is 30 s)


async def test_a_hung_server_is_a_503_within_the_deadline(tmp_path: Path, private_cluster: postgres.Cluster,
                                                          aiohttp_client) -> None:
    server = private_cluster
    cfg = make_config(tmp_path, database={"url": server.url(server.new_database()),
                                          "password_file": str(server.password_file),
                                          "answer_timeout": DEADLINE},
                      admin={"bcrypt_rounds": 4})
    async with db.opened(cfg.database) as conn:
        await users.add(conn, SYSTEM, "root", PASSWORD, is_admin=True, rounds=4)
    client: TestClient = await aiohttp_client(create_app(cfg))
    panel = Panel(client)
    assert (await panel.login("root")).status == 303
    assert (await panel.get("/domains"))[0] == 200
    server.freeze()
    try:
        for attempt in range(2):    # a session in use, then (its slot reconnecting) a new one
            started = time.monotonic()
            status, page = await panel.get("/domains")
            waited = time.monotonic() - started
            assert status == 503, (attempt, status)
            assert "Database unavailable" in page
            assert waited < DEADLINE + 2.0, (attempt, waited)
    finally:
        server.thaw()
    status, page = await panel.get("/domains")
    assert status == 200
    assert "Domains" in page
