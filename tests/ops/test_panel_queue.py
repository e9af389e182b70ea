"""The panel's queue page, its API and /metrics: who sees which domains, and a flush from the
API that makes a real Postfix deliver mail queued while the primary was down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mrod.admin.app import create_app
from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import domains, relays, tokens, users
from tests.admin.conftest import PASSWORD, Panel
from tests.conftest import make_config
from tests.harness import free_port
from tests.data import SYSTEM, seed_file
from tests.postfix.conftest import payload



@pytest.fixture
async def world(tmp_path: Path):
    cfg = make_config(tmp_path, admin={"bcrypt_rounds": 4})
    async with db.opened(cfg.database, create=True) as conn:
        boss = await users.add(conn, SYSTEM, "boss", PASSWORD, perms=("queue",), rounds=4)
        owner = await users.add(conn, SYSTEM, "owner", PASSWORD, perms=("queue", "domains_own"), rounds=4)
        await users.add(conn, SYSTEM, "nobody", PASSWORD, perms=("domains",), rounds=4)
        await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=free_port())
        mine = await domains.add(conn, SYSTEM, "mine.example", relay="primary", owner_id=owner.id)
        theirs = await domains.add(conn, SYSTEM, "theirs.example", relay="primary", owner_id=boss.id)
        for d, n in ((mine, 2), (theirs, 5)):
            await conn.execute(
                "INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, last_reason, updated_at)"
                " VALUES (?, ?, ?, ?, 1700000000, 'connect to primary: Connection refused', ?)",
                (cfg.node.name, d.id, n, n * 1000, db.now()))
        await conn.execute("INSERT INTO domain_check (node, domain_id, status, findings, checked_at)"
                           " VALUES (?, ?, 'error', ?, ?)",
                           (cfg.node.name, mine.id, '[{"level": "error", "code": "no-mx", "message": "mine.example has no MX records",'
                                     ' "fix": "add MX records"}]', db.now()))
        secret, _ = await tokens.create(conn, SYSTEM, owner.id, "t")
    return cfg, secret


class Browsers:
    """A fresh browser (its own cookie jar) per user, on one server of the app."""

    def __init__(self, aiohttp_client, app) -> None:
        self.aiohttp_client, self.app, self.server = aiohttp_client, app, None

    async def signed_in(self, name: str) -> Panel:
        if self.server is None:
            client = await self.aiohttp_client(self.app)
            self.server = client.server
        else:
            client = await self.aiohttp_client(self.server)
        panel = Panel(client)
        assert (await panel.login(name)).status == 303
        return panel


async def test_queue_page_and_who_sees_what(aiohttp_client, world) -> None:
    cfg, owner_token = world
    browsers = Browsers(aiohttp_client, create_app(cfg))
    boss = await browsers.signed_in("boss")
    status, page = await boss.get("/queue")
    assert status == 200
    assert "theirs.example" in page and "mine.example" in page and "7 messages" in page
    assert "Connection refused" in page
    assert "DNS problems" not in page and "Primaries" not in page        # no domain or relay permission
    owner = await browsers.signed_in("owner")
    status, page = await owner.get("/queue")
    assert status == 200 and "mine.example" in page and "theirs.example" not in page
    assert "1 domain with DNS errors" in page                           # the findings: the DNS checks page
    status, page = await owner.get("/dns?status=error")
    assert status == 200 and "mine.example has no MX records" in page and "fix:" in page
    status, _, _ = await owner.post("/queue/flush", {"domain": "theirs.example"})
    assert status == 403
    assert (await owner.get("/metrics"))[0] == 403                      # metrics name every domain
    status, text = await boss.get("/metrics")
    assert status == 200
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"mrod_queue_messages", "mrod_relay_up", "mrod_domain_checks"} <= names
    nobody = await browsers.signed_in("nobody")
    assert (await nobody.get("/queue"))[0] == 403
    # The API: the owner's token sees only the owner's domains.
    response = await owner.client.get("/api/v1/queue", headers={"Authorization": f"Bearer {owner_token}"})
    assert [(d["domain"], d["messages"]) for d in (await response.json())["domains"]] == [("mine.example", 2)]
    response = await owner.client.post("/api/v1/queue/theirs.example/flush",
                                       headers={"Authorization": f"Bearer {owner_token}"})
    assert response.status == 403


@pytest.mark.postfix
async def test_flush_from_the_api_delivers(aiohttp_client, mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)
    mrod = mrod_factory(start=False)
    await seed_file(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
                    domains=[{"name": "example.com", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings={"queue_run_delay": "3600s", "minimal_backoff_time": "3600s",
                                                     "maximal_backoff_time": "3600s"})
    with open(mrod.config_path, "a") as fh:
        fh.write(f'\n[postfix]\nconfig_dir = "{postfix.etc}"\n[admin]\nbcrypt_rounds = 4\n')
    cfg = configmod.load(mrod.config_path, env={})
    async with db.opened(cfg.database) as conn:
        await users.add(conn, SYSTEM, "ops", PASSWORD, perms=("queue",), rounds=4)
        secret, _ = await tokens.create(conn, SYSTEM, (await users.get(conn, "ops")).id, "t")
    await asyncio.to_thread(postfix.smtp, ["joe@example.com"], payload("api-flush", "joe@example.com"))
    await asyncio.to_thread(postfix.wait_for_queue, lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    primary.start()
    client = await aiohttp_client(create_app(cfg))
    response = await client.post("/api/v1/queue/example.com/flush", headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 200
    assert await response.json() == {"ok": True, "flushed": [
        {"domain": "example.com", "ok": True, "detail": "flush requested"}]}
    [message] = await asyncio.to_thread(primary.wait_for, 1, 20)
    assert message.rcpt_tos == ("joe@example.com",)


async def test_domain_list_marks_dns_problems_and_pauses(aiohttp_client, world) -> None:
    cfg, _ = world
    async with db.opened(cfg.database) as conn:
        await domains.update(conn, SYSTEM, "mine.example", paused=True, pause_reason="migration")
    owner = await Browsers(aiohttp_client, create_app(cfg)).signed_in("owner")
    status, page = await owner.get("/domains")
    assert status == 200
    row = page[page.index("mine.example"):]
    row = row[:row.index("</tr>")]
    assert "DNS error" in row and 'title="migration">paused' in row
