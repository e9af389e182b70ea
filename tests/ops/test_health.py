"""Primary health: probes over real sockets (an aiosmtpd primary, a closed port, a server that
talks nonsense, one that never answers), the hysteresis table, transitions audited, the
history pruned, and the relays that come back handed to the flusher."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mrod.entities import audit, domains, relays
from mrod.infra import db
from mrod.operations import health
from mrod.operations.health import State, next_state
from tests.conftest import make_config
from tests.harness import free_port
from tests.harness.smtpsink import SmtpSink

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:01:00Z"


# -- hysteresis ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start, probes, states", [
    # unknown: up at the first success, down only after down_after failures
    ("unknown", "o", "u"),
    ("unknown", "ff", "??"),
    ("unknown", "fff", "??d"),
    ("unknown", "ffo", "??u"),
    # up: one or two lost probes never flip it
    ("up", "fofofo", "uuuuuu"),
    ("up", "ffo", "uuu"),
    ("up", "fff", "uud"),
    # down: back up only after up_after successes in a row
    ("down", "o", "d"),
    ("down", "ofo", "ddd"),
    ("down", "oo", "du"),
    ("down", "ooffff", "duuudd"),
])
def test_hysteresis(start: str, probes: str, states: str) -> None:
    letter = {"unknown": "?", "up": "u", "down": "d"}
    current = State(start, NOW)
    seen = ""
    for p in probes:
        new = next_state(current, p == "o", down_after=3, up_after=2, now=LATER)
        if new.state != current.state:
            assert new.since == LATER
        else:
            assert new.since == current.since
        current = new
        seen += letter[current.state]
    assert seen == states


# -- probes ---------------------------------------------------------------------------------------


async def _serve(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_probe_a_live_primary() -> None:
    sink = SmtpSink("probe-target").start()
    try:
        result = await health.probe("127.0.0.1", sink.port, timeout=5)
    finally:
        sink.stop()
    assert result.ok, result.detail
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert result.starttls is False            # aiosmtpd without a certificate offers no STARTTLS
    assert "probe-target.primary.test" in result.detail


# STARTTLS (offered, required, completed at the relay's level): tests/ops/test_smtp_dialogue.py


async def test_probe_a_closed_port() -> None:
    result = await health.probe("127.0.0.1", free_port(), timeout=5)
    assert not result.ok and result.latency_ms is None
    assert "refused" in result.detail.lower() or "connect" in result.detail.lower()


@pytest.mark.parametrize("banner, expected", [
    (b"554 5.3.2 go away\r\n", "the server greets with 554, not 220"),
    (b"HTTP/1.1 400 Bad Request\r\n", "not an SMTP reply"),
    (b"", "connection closed"),
])
async def test_probe_a_server_that_is_not_a_working_smtp_server(banner: bytes, expected: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        writer.close()

    server, port = await _serve(handler)
    async with server:
        result = await health.probe("127.0.0.1", port, timeout=5)
    assert not result.ok and expected in result.detail


async def test_probe_a_silent_server_times_out() -> None:
    held: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)       # accept, then say nothing

    server, port = await _serve(handler)
    async with server:
        result = await health.probe("127.0.0.1", port, timeout=0.5)
        for w in held:
            w.close()
    assert not result.ok and "within 0.5 s" in result.detail


# -- the monitor ---------------------------------------------------------------------------------


class Flushes:
    """Records what the monitor asks to flush (the real flush is tested against real Postfix)."""

    def __init__(self) -> None:
        self.calls: list[dict[int, str]] = []

    async def __call__(self, cfg, rows):
        self.calls.append(dict(rows))
        return []


@pytest.fixture
async def monitor_setup(tmp_path: Path, actor):
    sink = SmtpSink("primary")          # down until started
    cfg = make_config(tmp_path, health={"down_after": 2, "up_after": 2, "timeout": 3.0})
    async with db.opened(cfg.database.path, create=True) as conn:
        await relays.add(conn, actor, name="primary", host="127.0.0.1", port=sink.port)
        await relays.add(conn, actor, name="spare", host="127.0.0.1", port=sink.port)
        await domains.add(conn, actor, "example.com", relay="primary", include_subdomains=True)
        await domains.add(conn, actor, "example.org", relay="primary")
        await domains.add(conn, actor, "other.example", relay="spare")
    flushes = Flushes()
    yield cfg, sink, health.HealthMonitor(cfg, flusher=flushes), flushes
    sink.stop()


async def _states(cfg) -> dict[str, str]:
    async with db.opened(cfg.database.path) as conn:
        return {row["name"]: row["state"] for row in await health.status(conn)}


async def test_monitor_marks_down_then_up_audits_and_flushes(monitor_setup) -> None:
    cfg, sink, monitor, flushes = monitor_setup
    assert await _states(cfg) == {"primary": "unknown", "spare": "unknown"}
    assert await monitor.run_once() == []                 # one failure: still unknown
    [t1, t2] = await monitor.run_once()                   # second: down
    assert {(t1.relay, t1.before, t1.after), (t2.relay, t2.before, t2.after)} == {
        ("primary", "unknown", "down"), ("spare", "unknown", "down")}
    assert flushes.calls == []
    sink.start()
    assert await monitor.run_once() == []                 # one success: still down
    assert await _states(cfg) == {"primary": "down", "spare": "down"}
    transitions = await monitor.run_once()
    assert sorted(t.after for t in transitions) == ["up", "up"]
    # Both relays came back in one round: one flush of all their domains.
    assert flushes.calls == [{1: "example.com", 2: "example.org", 3: "other.example"}]
    async with db.opened(cfg.database.path) as conn:
        entries = await audit.entries(conn, entity="relay", key="primary", action="state")
        rows = await health.status(conn)
        probes = await health.history(conn, rows[0]["id"])
    states = [((e.before or {})["state"], (e.after or {})["state"]) for e in reversed(entries)]
    assert states == [("unknown", "down"), ("down", "up")]
    assert all(e.actor == "health" and e.origin == "system" for e in entries)
    assert [p["ok"] for p in probes] == [1, 1, 0, 0]
    primary = rows[0]
    assert primary["state"] == "up" and primary["last_ok"] is True and primary["domains"] == 2
    assert primary["last_latency_ms"] is not None and primary["starttls"] is False


async def test_first_success_from_unknown_is_up_and_flushes(monitor_setup) -> None:
    cfg, sink, monitor, flushes = monitor_setup
    sink.start()
    transitions = await monitor.run_once()
    assert {(t.before, t.after) for t in transitions} == {("unknown", "up")}
    assert len(flushes.calls) == 1
    assert await monitor.run_once() == [] and len(flushes.calls) == 1   # no transition, no flush


async def test_no_flush_when_disabled(tmp_path: Path, actor) -> None:
    sink = SmtpSink("primary").start()
    try:
        cfg = make_config(tmp_path, health={"flush_on_up": False})
        async with db.opened(cfg.database.path, create=True) as conn:
            await relays.add(conn, actor, name="primary", host="127.0.0.1", port=sink.port)
            await domains.add(conn, actor, "example.com", relay="primary")
        flushes = Flushes()
        assert len(await health.HealthMonitor(cfg, flusher=flushes).run_once()) == 1
        assert flushes.calls == []
    finally:
        sink.stop()


async def test_history_is_pruned_by_age(monitor_setup) -> None:
    cfg, _, monitor, _ = monitor_setup
    async with db.opened(cfg.database.path) as conn:
        await conn.execute("INSERT INTO health_probe (relay_id, at, ok, detail) VALUES (1, '2000-01-01T00:00:00Z', 1, 'old')")
    await monitor.run_once()
    async with db.opened(cfg.database.path) as conn:
        async with conn.execute("SELECT detail FROM health_probe WHERE relay_id = 1") as cur:
            details = [r[0] for r in await cur.fetchall()]
    assert "old" not in details and len(details) == 1


async def test_a_relay_removed_takes_its_health_with_it(monitor_setup, actor) -> None:
    cfg, _, monitor, _ = monitor_setup
    await monitor.run_once()
    async with db.opened(cfg.database.path) as conn:
        await domains.remove(conn, actor, "other.example")
        await relays.remove(conn, actor, "spare")
        async with conn.execute("SELECT count(*) FROM relay_health") as cur:
            assert (await db.one_row(cur))[0] == 1
