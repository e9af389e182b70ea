"""Per-node state (issue 11 point 4): two configs with different [node] names over one database
(SQLite file or PostgreSQL) keep their queue readings, primary health and DNS checks apart; each
node's policy quota reads its own queue; the panel's Queue page shows both nodes and a flush of
mail another node holds becomes a request that node takes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mrod.admin.app import create_app
from mrod.answers import policy, routing
from mrod.entities import domains, relays, tokens, users
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import ConfigError
from mrod.operations import checks, flushrequests, health, metrics, queueflush, queueread, queuereading, queuestats
from mrod.operations.health import HealthMonitor, Probe
from mrod.operations.queueparse import DomainQueue
from tests.admin.conftest import PASSWORD, Panel
from tests.conftest import make_config
from tests.data import SYSTEM


def _node(cfg: Config, name: str) -> Config:
    """The same database, another node."""
    return make_config(Path(cfg.base_dir), node={"name": name}, admin={"bcrypt_rounds": 4})


def _report(rows: dict[int, tuple[str, int]]) -> queueread.QueueReport:
    report = queueread.QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={}, bad_lines=0,
                               unknown_fields=[], read_at=db.now())
    for domain_id, (name, count) in rows.items():
        q = DomainQueue(name)
        q.messages, q.bytes, q.oldest = count, count * 1000, 1700000000
        report.rows[domain_id] = q
    return report


def _policy_store(cfg: Config) -> policy.PolicyStore:
    return policy.PolicyStore(db.open_sync(cfg.database, 2.0))


def test_node_name_defaults_to_the_host_name_and_is_checked(tmp_path: Path) -> None:
    import socket

    assert make_config(tmp_path).node.name == socket.gethostname().lower()
    assert make_config(tmp_path, node={"name": "MX2.Example.NET."}).node.name == "mx2.example.net"
    for bad in ("", "mx_2", "-mx", "mx 2", "a..b"):
        with pytest.raises(ConfigError, match="node.name") as err:
            make_config(tmp_path, node={"name": bad})
        assert "\n" not in str(err.value)


async def test_queue_readings_stay_apart_and_the_quota_reads_its_own_node(cfg: Config, conn: Any) -> None:
    a, b = _node(cfg, "mx-a"), _node(cfg, "mx-b")
    await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    shop = await domains.add(conn, SYSTEM, "shop.example", relay="primary", quota_messages=5)
    calm = await domains.add(conn, SYSTEM, "calm.example", relay="primary")
    await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 9)}), b.node.name)
    await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 1), calm.id: ("calm.example", 2)}), a.node.name)
    # A's next reading replaces A's rows only.
    await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 2)}), a.node.name)
    mine = await queuestats.stats(conn, node="mx-a")
    assert [(r["node"], r["domain"], r["messages"]) for r in mine] == [("mx-a", "shop.example", 2)]
    every = await queuestats.stats(conn)
    assert sorted((r["node"], r["messages"]) for r in every) == [("mx-a", 2), ("mx-b", 9)]
    assert (await queuestats.totals(conn, node="mx-b"))["messages"] == 9
    assert (await queuestats.stat_for(conn, shop.id, "mx-a") or {})["messages"] == 2

    request = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "recipient": "x@shop.example"}
    store = _policy_store(cfg)
    try:
        on_a = policy.evaluate(store, request, a.policy, routing.Options.from_config(a))
        on_b = policy.evaluate(store, request, b.policy, routing.Options.from_config(b))
    finally:
        store.close()
    assert isinstance(on_a, policy.Decision) and on_a.reason == "dunno"     # 2 of 5 on A
    assert isinstance(on_b, policy.Decision) and on_b.reason == "quota"     # 9 of 5 on B
    assert "9 messages waiting" in on_b.action

    # Metrics of a node describe that node.
    found = {s.labels["domain"]: s.value for f in metrics.database_families(cfg.database, "mx-b")
             if f.name == "mrod_queue_messages" for s in f.samples}
    assert found == {"shop.example": 9}


async def test_health_and_dns_checks_are_per_node(cfg: Config, conn: Any) -> None:
    a, b = _node(cfg, "mx-a"), _node(cfg, "mx-b")
    relay = await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    shop = await domains.add(conn, SYSTEM, "shop.example", relay="primary")
    down, up = Probe(False, None, None, "connection refused"), Probe(True, 3.0, True, "220 primary")
    on_a, on_b = HealthMonitor(a), HealthMonitor(b)
    seen_a, seen_b = [], []
    for _ in range(a.health.down_after):
        seen_a += await on_a.record(conn, [({"id": relay.id, "name": relay.name}, down)])
        seen_b += await on_b.record(conn, [({"id": relay.id, "name": relay.name}, up)])
    # Each node's transitions (what auto-flush acts on) follow its own probes only.
    assert [(t.before, t.after) for t in seen_a] == [("unknown", "down")]
    assert [(t.before, t.after) for t in seen_b] == [("unknown", "up")]
    assert [r["state"] for r in await health.status(conn, node="mx-a")] == ["down"]
    assert [r["state"] for r in await health.status(conn, node="mx-b")] == ["up"]
    assert [(r["node"], r["state"]) for r in await health.status(conn)] == [("mx-a", "down"), ("mx-b", "up")]
    assert {h["node"] for h in await health.history(conn, relay.id)} == {"mx-a", "mx-b"}
    assert [h["ok"] for h in await health.history(conn, relay.id, node="mx-b")] == [1] * a.health.down_after

    finding = checks.Finding("error", "no-mx", "shop.example has no MX records", "add MX records")
    await checks.store(conn, [checks.DomainCheck(shop.id, shop.name, [finding], db.now())], "mx-a")
    await checks.store(conn, [checks.DomainCheck(shop.id, shop.name, [], db.now())], "mx-b")
    assert (await checks.result_for(conn, shop.id, "mx-b") or {})["status"] == "ok"
    rows, total = await checks.page(conn)
    assert total == 2 and [(r["node"], r["status"]) for r in rows] == [("mx-a", "error"), ("mx-b", "ok")]
    assert await checks.statuses(conn) == {shop.id: "error"}          # the worst any node found


async def test_panel_shows_both_nodes_and_a_flush_reaches_the_node_holding_the_mail(
        cfg: Config, conn: Any, aiohttp_client: Any) -> None:
    a, b = _node(cfg, "mx-a"), _node(cfg, "mx-b")
    boss = await users.add(conn, SYSTEM, "boss", PASSWORD, perms=("queue", "relay", "domains"), rounds=4)
    await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    shop = await domains.add(conn, SYSTEM, "shop.example", relay="primary")
    await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 4)}), "mx-a")
    await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 7)}), "mx-b")
    await HealthMonitor(b).record(conn, [({"id": 1, "name": "primary"}, Probe(True, 2.0, None, "220 ok"))])
    await checks.store(conn, [checks.DomainCheck(shop.id, shop.name, [], db.now())], "mx-b")

    panel = Panel(await aiohttp_client(create_app(a)))
    assert (await panel.login("boss")).status == 303
    status, page = await panel.get("/queue")
    assert status == 200 and "11 messages" in page and ">Node</th>" in page
    assert '<td data-label="Node">mx-a</td>' in page and '<td data-label="Node">mx-b</td>' in page
    assert "this is node <strong>mx-a</strong>" in page
    status, page = await panel.get("/dns")
    assert status == 200 and 'from node <span class="node">mx-b</span>' in page
    # The relays list and the dashboard are this node's view: B saw the primary up, A never probed it.
    status, page = await panel.get("/relays")
    assert status == 200 and '<td data-label="Health" data-health="primary"><span class="state unknown">unknown</span>' in page
    panel_b = Panel(await aiohttp_client(create_app(b)))
    assert (await panel_b.login("boss")).status == 303
    status, page = await panel_b.get("/relays")
    assert status == 200 and '<td data-label="Health" data-health="primary"><span class="state up"' in page

    # B holds this mail: A's panel leaves a request for B; B's queue job takes it.
    status, _, _ = await panel.post("/queue/flush", {"domain": "shop.example", "node": "mx-b"})
    assert status == 303
    assert [(r["node"], r["domain"]) for r in await flushrequests.pending(conn)] == [("mx-b", "shop.example")]
    status, page = await panel.get("/queue")
    assert "Flushes waiting for their node: shop.example on mx-b (asked by boss)" in page
    asked: list[tuple[str, dict[int, str]]] = []

    async def flusher(node_cfg: Config, rows: dict[int, str]) -> list[queueflush.FlushResult]:
        asked.append((node_cfg.node.name, rows))
        return [queueflush.FlushResult(name, True, "flush requested") for name in rows.values()]

    assert await flushrequests.take(a, flusher) == [] and asked == []     # not A's to take
    await flushrequests.take(b, flusher)
    assert asked == [("mx-b", {shop.id: "shop.example"})]
    assert await flushrequests.pending(conn) == []
    # The API takes the node too.
    token, _ = await tokens.create(conn, SYSTEM, boss.id, "t")
    response = await panel.client.post("/api/v1/queue/shop.example/flush?node=mx-b",
                                       headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200 and (await response.json())["ok"]
    assert [r["node"] for r in await flushrequests.pending(conn)] == ["mx-b"]
    await flushrequests.take(b, flusher)
    # A bad node name is refused and stores nothing.
    status, _, _ = await panel.post("/queue/flush", {"domain": "shop.example", "node": "no such node"})
    assert status == 400 and await flushrequests.pending(conn) == []


def _config_file(cfg: Config, name: str) -> Path:
    """A config file for node ``name`` on the test's database (either engine)."""
    path = Path(cfg.base_dir) / f"{name}.toml"
    where = (f'url = "{cfg.database.url}"\npassword_file = "{cfg.database.password_file}"\n' if cfg.database.url
             else f'path = "{cfg.database.path}"\n')
    path.write_text(f'[database]\n{where}[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n[node]\nname = "{name}"\n')
    return path


def test_cli_shows_this_node_and_every_node_on_request(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from mrod.cli import main

    async def seed() -> None:
        async with db.opened(cfg.database) as conn:
            relay = await relays.add(conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
            shop = await domains.add(conn, SYSTEM, "shop.example", relay="primary")
            for name, probe in (("mx-a", Probe(False, None, None, "refused")), ("mx-b", Probe(True, 2.0, None, "220"))):
                monitor = HealthMonitor(_node(cfg, name))
                for _ in range(cfg.health.down_after):
                    await monitor.record(conn, [({"id": relay.id, "name": relay.name}, probe)])
            await queuestats.write_stats(conn, _report({shop.id: ("shop.example", 3)}), "mx-b")

    a, b = _config_file(cfg, "mx-a"), _config_file(cfg, "mx-b")

    def mrod(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", str(args[0]), *args[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    # Before any node has read its queue, an empty list is not "nothing waits".
    code, out, err = mrod(str(a), "queue", "--all-nodes")
    assert code == 0
    assert "no node has read its queue yet" in err
    assert "mail waiting" not in out
    asyncio.run(seed())

    async def failed_reading() -> None:
        async with db.opened(cfg.database) as conn:
            await queuereading.read_failed(conn, "mx-a", "postqueue -j: fatal: open /etc/postfix/main.cf")

    asyncio.run(failed_reading())

    code, out, _ = mrod(str(a), "health")
    assert code == 1 and "mx-a" in out and "down" in out and "mx-b" not in out
    code, out, _ = mrod(str(b), "health", "--json")
    assert code == 0 and [(r["node"], r["state"]) for r in json.loads(out)] == [("mx-b", "up")]
    code, out, _ = mrod(str(b), "health", "--all-nodes")
    assert code == 1 and "mx-a" in out and "mx-b" in out
    code, out, err = mrod(str(a), "queue", "--all-nodes", "--json")
    assert code == 0
    assert [(r["node"], r["domain"], r["messages"]) for r in json.loads(out)] == [("mx-b", "shop.example", 3)]
    # mx-a's queue could not be read: said (on stderr, so --json stays the rows), mx-b's worked.
    assert len(err.splitlines()) == 1
    assert err.startswith("mrod: node mx-a: the queue could not be read at ")
    assert "main.cf" in err
    assert "it has never been read" in err
    code, _, err = mrod(str(a), "queue", "--all-nodes", "--flush")
    assert code == 2 and "this node's queue only" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_readings_from_before_migration_0007_are_kept_as_node_empty_then_replaced(
        tmp_path: Path, engine: str) -> None:
    """SQLite rebuilds the three keyed tables (PostgreSQL alters them in place; test_schema
    checks both end the same): the rows survive with node '' and a node's next write replaces them."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA foreign_keys = ON")
    for version, _name, sql in db.migrations():
        if version < 7:
            raw.executescript(sql)
            raw.execute(f"PRAGMA user_version = {version}")
    raw.execute("INSERT INTO relay (id, name, host, port, created_at, updated_at)"
                " VALUES (1, 'primary', '127.0.0.1', 9, 'x', 'x')")
    raw.execute("INSERT INTO domain (id, name, relay_id, created_at, updated_at)"
                " VALUES (1, 'shop.example', 1, 'x', 'x')")
    raw.execute("INSERT INTO queue_stat (domain_id, messages, bytes, updated_at) VALUES (1, 4, 400, 'x')")
    raw.execute("INSERT INTO relay_health (relay_id, state) VALUES (1, 'down')")
    raw.execute("INSERT INTO domain_check (domain_id, status, findings, checked_at) VALUES (1, 'ok', '[]', 'x')")
    raw.commit()
    raw.close()
    async with db.opened(path) as conn:
        assert (await db.migrate(conn))[1] >= 7
        assert [(r["node"], r["messages"]) for r in await queuestats.stats(conn)] == [("", 4)]
        assert [(r["node"], r["state"]) for r in await health.status(conn)] == [("", "down")]
        await queuestats.write_stats(conn, _report({1: ("shop.example", 1)}), "mx-a")
        await checks.store(conn, [checks.DomainCheck(1, "shop.example", [], db.now())], "mx-a")
        await HealthMonitor(make_config(tmp_path, node={"name": "mx-a"})).record(
            conn, [({"id": 1, "name": "primary"}, Probe(True, 1.0, None, "220"))])
        assert [(r["node"], r["messages"]) for r in await queuestats.stats(conn)] == [("mx-a", 1)]
        assert [r["node"] for r in (await checks.page(conn))[0]] == ["mx-a"]
        assert [(r["node"], r["state"]) for r in await health.status(conn)] == [("mx-a", "up")]
        async with conn.execute("DELETE FROM domain WHERE id = 1"):     # the keys still cascade
            pass
        assert await queuestats.stats(conn) == [] and (await checks.page(conn))[1] == 0
