"""A recipient source's sync is journaled: lookupd on PostgreSQL (recipients answered from
memory, refreshed from the change journal) answers the synced list at its next lookups, and
the domain's switch to `listed` with it."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from mrod.infra import db
from mrod.recipientsources import sources, spec, sync
from tests.conftest import make_config
from tests.data import ACTOR
from tests.harness import postgres
from tests.lookupd.conftest import SocketmapClient
from tests.lookupd.test_pg_follow import _client, _start, _target, _until, _write, clients

__all__ = ["clients"]   # the fixture, used by name below


async def _export(body: list[str]) -> tuple[web.AppRunner, str]:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(body).encode())

    app = web.Application()
    app.router.add_get("/x", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/x"


async def test_a_sync_is_answered_at_the_next_lookup(
        tmp_path: Path, pg_database: tuple[postgres.Cluster, str], clients: list[SocketmapClient]) -> None:
    target = _target(*pg_database)
    await _write(target, relays=[dict(name="primary", host="mx1.example.net")],
                 domains=[dict(name="synced.example", relay="primary")])
    body = ["ann@synced.example", "joe@synced.example"]
    runner, url = await _export(body)
    daemon = await _start(tmp_path, target)
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file})
    try:
        client = await _client(daemon, clients)
        assert (await client.ask("relay_recipients", "bob@synced.example")).startswith("OK")   # accept_all
        async with db.opened(target) as conn:
            await sources.add(conn, ACTOR, spec.parse({"name": "hr", "kind": "url", "url": url}))
            await sources.use_for_domain(conn, ACTOR, "synced.example", "hr")
            assert (await sync.run(cfg, conn, "hr")).applied
        assert await _until(lambda: client.ask("relay_recipients", "bob@synced.example"), "NOTFOUND") == "NOTFOUND "
        assert await client.ask("relay_recipients", "joe@synced.example") == "OK joe@synced.example"
    finally:
        await daemon.stop()
        await runner.cleanup()
