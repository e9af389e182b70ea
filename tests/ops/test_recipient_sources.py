"""Recipient sources synced from a URL on loopback (JSON and CSV): what a sync applies, the
safety rules (failure, empty, too much removed → the last list stays, the source fails until
accepted), the domain switching to `listed` at its first good sync, and the lease between nodes.
Runs on SQLite and PostgreSQL (the ops tier)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from mrod.entities import domains, recipients, relays
from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.operations import metrics, servejobs
from mrod.recipientsources import sources, spec, status, sync
from tests.data import ACTOR
from tests.ops.test_metrics import samples


class Export:
    """An HTTP export on loopback whose answer a test sets: (status, body)."""

    def __init__(self) -> None:
        self.status, self.body = 200, b"[]"
        self.url = ""

    def json(self, data: Any) -> None:
        self.status, self.body = 200, json.dumps(data).encode()

    async def handle(self, _request: web.Request) -> web.Response:
        return web.Response(status=self.status, body=self.body)


@pytest.fixture
async def export() -> AsyncIterator[Export]:
    served = Export()
    app = web.Application()
    app.router.add_get("/{name}", served.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}/export"
    try:
        yield served
    finally:
        await runner.cleanup()


async def _setup(conn: Connection, url: str, fmt: str = "json") -> None:
    await relays.add(conn, ACTOR, name="primary", host="mx1.example.net")
    await domains.add(conn, ACTOR, "example.com", relay="primary")
    await domains.add(conn, ACTOR, "example.org", relay="primary")
    await domains.add(conn, ACTOR, "other.net", host="mx.other.net")
    await sources.add(conn, ACTOR, spec.parse({"name": "hr", "kind": "url", "url": url, "format": fmt}))
    await sources.use_for_relay(conn, ACTOR, "primary", "hr")


async def _listed(conn: Connection, domain: str) -> list[str]:
    return [r.address for r in await recipients.list_for(conn, domain)]


PEOPLE = [f"user{i}@example.com" for i in range(10)]


async def test_json_sync_lists_fed_domains_and_switches_them_to_listed(
        cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    await sources.use_for_domain(conn, ACTOR, "example.org", "none")   # opts out of its relay's source
    assert (await domains.get(conn, "example.com")).recipients == "accept_all"
    export.json([{"mail": "Alice@Example.COM"}, {"address": "smtp:bob@example.com"}, {"email": "x@example.org"},
                 {"mail": "z@other.net"}, {"mail": "not an address"}])
    out = await sync.run(cfg, conn, "hr")
    assert out.applied and out.error is None
    assert await _listed(conn, "example.com") == ["alice@example.com", "bob@example.com"]
    assert await _listed(conn, "example.org") == []
    assert (out.ignored, out.invalid) == (2, 1)      # example.org opted out; other.net not fed
    assert (await domains.get(conn, "example.com")).recipients == "listed"
    assert (await domains.get(conn, "example.org")).recipients == "accept_all"
    row = (await status.describe_all(conn))[0]
    assert row["state"] == "ok" and row["addresses"] == 2 and row["domain_counts"] == {"example.com": 2}
    assert row["domains"] == ["example.com"] and row["error"] is None


async def test_csv_with_header_and_hand_added_rows_stay(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url, "csv")
    await recipients.add(conn, ACTOR, "boss@example.com")
    export.status, export.body = 200, b"name,email\nA,a@example.com\n# comment\nB,boss@example.com\n"
    assert (await sync.run(cfg, conn, "hr")).applied
    assert await _listed(conn, "example.com") == ["a@example.com", "boss@example.com"]
    export.body = b"email\nc@example.com\n"     # a removed, c added: 1 of 1 synced rows (> 20%) -> held
    held = await sync.run(cfg, conn, "hr")
    assert held.held and "would remove 1 of 1" in (held.error or "")
    assert await _listed(conn, "example.com") == ["a@example.com", "boss@example.com"]


@pytest.mark.parametrize("trouble", ["failure", "empty", "removal"])
async def test_unsafe_result_keeps_the_list_until_accepted(
        cfg: Config, conn: Connection, export: Export, trouble: str) -> None:
    await _setup(conn, export.url)
    export.json(PEOPLE)
    assert (await sync.run(cfg, conn, "hr")).applied
    if trouble == "failure":
        export.status, export.body = 500, b"oops"
    elif trouble == "empty":
        export.json([])
    else:
        export.json(PEOPLE[:7])          # 3 of 10 removed: more than 20%
    out = await sync.run(cfg, conn, "hr")
    assert not out.applied and out.error
    assert await _listed(conn, "example.com") == sorted(PEOPLE)
    source = await sources.get(conn, "hr")
    assert source.error and source.failing_since and source.pending == (trouble != "failure")
    assert (await status.describe(conn, source))["state"] == ("failing" if trouble == "failure" else "held")
    if trouble == "failure":
        return
    await sources.accept(conn, ACTOR, "hr")
    assert (await sync.run(cfg, conn, "hr")).applied
    assert await _listed(conn, "example.com") == sorted(PEOPLE[:7] if trouble == "removal" else [])
    source = await sources.get(conn, "hr")
    assert source.error is None and source.failing_since is None and not source.pending and not source.accept_next


async def test_a_small_removal_is_applied(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    export.json(PEOPLE)
    await sync.run(cfg, conn, "hr")
    export.json(PEOPLE[:8] + ["new@example.com"])     # 2 of 10 removed: 20% is allowed
    out = await sync.run(cfg, conn, "hr")
    assert out.applied and (out.added, out.removed) == (1, 2)


async def test_another_nodes_lease_skips_the_sync(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    source = await sources.get(conn, "hr")
    assert await sources.claim(conn, source.id, "other-node", "2999-01-01T00:00:00Z")
    assert (await sync.run(cfg, conn, "hr")).skipped
    await sources.release(conn, source.id)
    export.json(PEOPLE)
    assert (await sync.run(cfg, conn, "hr")).applied


async def test_a_source_that_feeds_no_domain_yet_is_read_not_held(
        cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    await sources.use_for_relay(conn, ACTOR, "primary", "none")
    export.json(PEOPLE)
    out = await sync.run(cfg, conn, "hr")
    assert out.applied and out.ignored == 10 and not out.held
    assert (await sources.get(conn, "hr")).error is None


async def test_a_domain_without_addresses_keeps_its_policy(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    export.json(PEOPLE)
    await sync.run(cfg, conn, "hr")
    assert (await domains.get(conn, "example.org")).recipients == "accept_all"


async def test_mrod_serve_runs_the_sync_job(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    export.json(PEOPLE)
    job = {j.name: j for j in servejobs.jobs(cfg)}["recipient sources"]
    assert job.interval == cfg.recipient_sources.interval == 900
    await job.run()
    assert await _listed(conn, "example.com") == sorted(PEOPLE)
    off = dataclasses.replace(cfg, recipient_sources=dataclasses.replace(cfg.recipient_sources, enabled=False))
    assert "recipient sources" not in [j.name for j in servejobs.jobs(off)]


async def test_metrics_show_each_source(cfg: Config, conn: Connection, export: Export) -> None:
    await _setup(conn, export.url)
    await sources.add(conn, ACTOR, spec.parse({"name": "down", "kind": "url", "url": "http://127.0.0.1:9/x"}))
    await sources.use_for_domain(conn, ACTOR, "other.net", "down")
    export.json(PEOPLE)
    await sync.run_all(cfg, conn)
    got = samples(metrics._encode(metrics.database_families(cfg.database)))
    assert got[("mrod_recipient_source_failing", (("source", "hr"),))] == 0
    assert got[("mrod_recipient_source_failing", (("source", "down"),))] == 1
    assert got[("mrod_recipient_source_addresses", (("source", "hr"),))] == 10
    ok_at = (await sources.get(conn, "hr")).ok_at or ""
    assert got[("mrod_recipient_source_last_success_timestamp_seconds", (("source", "hr"),))] == \
        db.parse_stamp(ok_at).timestamp()
    assert ("mrod_recipient_source_addresses", (("source", "down"),)) not in got
