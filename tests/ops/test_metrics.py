"""Prometheus metrics: the cheap latency histogram, figures from the database, a running
lookupd's counters over real sockets and HTTP, and `mrod serve` exposing the health job's
verdict on [metrics] listen."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mrod.lookupd.daemon import Lookupd
from mrod.lookupd.metricsserver import MetricsServer
from mrod.infra import db
from mrod.entities import domains, relays
from mrod.operations import metrics
from mrod.operations.latency import Latency
from tests.conftest import make_config
from tests.harness import free_port
from tests.harness.smtpsink import SmtpSink
from tests.data import ACTOR


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    if isinstance(text, bytes):
        text = text.decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_latency_histogram_buckets_are_cumulative() -> None:
    lat = Latency(buckets=(0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.005, 0.05, 3.0):
        lat.observe("transport", seconds)
    lat.observe("relay_domains", 0.002)
    got = samples(metrics._encode([metrics.histogram(lat, "x_seconds", "test", "map")]))
    t = (("map", "transport"),)
    assert [got[("x_seconds_bucket", tuple(sorted(t + (("le", le),))))] for le in ("0.001", "0.01", "0.1", "+Inf")] \
        == [2, 3, 4, 5]
    assert got[("x_seconds_count", t)] == 5
    assert got[("x_seconds_sum", t)] == pytest.approx(3.0565)
    assert got[("x_seconds_count", (("map", "relay_domains"),))] == 1


async def test_database_figures(tmp_path: Path, conn) -> None:
    cfg = make_config(tmp_path)
    await relays.add(conn, ACTOR, name="alpha", host="127.0.0.1")
    await relays.add(conn, ACTOR, name="beta", host="127.0.0.1", port=2525)
    await relays.add(conn, ACTOR, name="gamma", host="127.0.0.1", port=2526)
    d = await domains.add(conn, ACTOR, "example.com", relay="alpha")
    now = int(time.time())
    await conn.execute("INSERT INTO relay_health (relay_id, state, last_latency_ms) VALUES (1, 'up', 12.5), (2, 'down', NULL)")
    await conn.execute("INSERT INTO queue_stat (domain_id, messages, bytes, oldest, updated_at) VALUES (?, 3, 4096, ?, ?)",
                       (d.id, now - 600, db.now()))
    await conn.execute("INSERT INTO domain_check (domain_id, status, findings, checked_at) VALUES (?, 'error', '[]', ?)",
                       (d.id, db.now()))
    await conn.execute(
        "INSERT INTO import_run (started_at, finished_at, duration_ms, status, actor, origin)"
        " VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', 1000, 'ok', 't', 'cli'),"
        " ('2026-01-02T00:00:00Z', '2026-01-02T00:00:01Z', 1000, 'failed', 't', 'cli')")
    got = samples(metrics._encode(metrics.database_families(cfg.database)))
    assert got[("mrod_relay_up", (("relay", "alpha"),))] == 1
    assert got[("mrod_relay_up", (("relay", "beta"),))] == 0
    assert got[("mrod_relay_up", (("relay", "gamma"),))] == 0
    assert {s: got[("mrod_relays", (("state", s),))] for s in ("up", "down", "unknown")} == {"up": 1, "down": 1, "unknown": 1}
    assert got[("mrod_relay_probe_latency_seconds", (("relay", "alpha"),))] == pytest.approx(0.0125)
    assert got[("mrod_queue_messages", (("domain", "example.com"),))] == 3
    assert got[("mrod_queue_bytes", (("domain", "example.com"),))] == 4096
    assert 599 <= got[("mrod_queue_oldest_age_seconds", (("domain", "example.com"),))] < 700
    assert got[("mrod_domain_checks", (("status", "error"),))] == 1
    assert got[("mrod_import_runs_total", (("status", "ok"),))] == 1
    assert got[("mrod_import_runs_total", (("status", "failed"),))] == 1
    assert got[("mrod_import_last_success_timestamp_seconds", ())] == 1767225601.0


def test_a_missing_database_is_reported_not_raised(tmp_path: Path) -> None:
    got = samples(metrics._encode(metrics.database_families(tmp_path / "nothing.db")))
    assert got[("mrod_metrics_source_error", (("error", "DatabaseNotReady"), ("source", "database")))] == 1


async def _socketmap(port: int, requests: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = []
    for request in requests:
        writer.write(b"%d:%s," % (len(request), request))
        await writer.drain()
        header = await reader.readuntil(b":")
        replies.append((await reader.readexactly(int(header[:-1]) + 1))[:-1])
    writer.close()
    return replies


async def test_a_running_lookupd_counts_and_serves_metrics(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, lookupd={"policy": "127.0.0.1:0"}, metrics={"listen": "127.0.0.1:0"})
    async with db.opened(cfg.database, create=True) as c:
        await relays.add(c, ACTOR, name="primary", host="127.0.0.1")
        await domains.add(c, ACTOR, "example.com", relay="primary")
        await domains.add(c, ACTOR, "paused.example", relay="primary", paused=True)
        # Another node sees the primary up; this node has not probed it (issue 11: per node).
        await c.execute("INSERT INTO relay_health (node, relay_id, state) VALUES ('other-node', 1, 'up')")
    daemon, server = Lookupd(cfg), MetricsServer(cfg)
    await daemon.start()
    await server.start()
    try:
        port = daemon.listener("socketmap").port
        replies = await _socketmap(port, [b"relay_domains example.com", b"relay_domains nothere.example",
                                          b"relay_domains example.com", b"no_such_map key", b"other_bad key"])
        assert [r.split(b" ")[0] for r in replies] == [b"OK", b"NOTFOUND", b"OK", b"TEMP", b"TEMP"]
        policy_port = daemon.listener("policy").port
        reader, writer = await asyncio.open_connection("127.0.0.1", policy_port)
        writer.write(b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@paused.example\n\n")
        assert (await reader.readuntil(b"\n\n")).startswith(b"action=DEFER_IF_PERMIT")
        writer.close()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                got = samples(await response.text())
    finally:
        await server.stop()
        await daemon.stop()
    assert got[("mrod_lookups_total", (("answer", "OK"), ("map", "relay_domains")))] == 2
    # ours, and the start-up check Lookupd makes of its database
    assert got[("mrod_lookups_total", (("answer", "NOTFOUND"), ("map", "relay_domains")))] == 2
    # Map names from clients never become labels of their own.
    assert got[("mrod_lookups_total", (("answer", "TEMP"), ("map", "other")))] == 2
    assert got[("mrod_lookup_temp_answers_total", (("map", "other"),))] == 2
    # A sampled histogram (one lookup in LATENCY_SAMPLE, the first included): see lookupd/service.py.
    assert got[("mrod_lookup_duration_seconds_count", (("map", "relay_domains"),))] >= 1
    assert got[("mrod_policy_decisions_total", (("decision", "paused"),))] == 1
    assert got[("mrod_relay_up", (("relay", "primary"),))] == 0
    assert ("mrod_lookupd_connections", ()) in got


def test_mrod_serve_exposes_the_health_jobs_verdict(tmp_path: Path) -> None:
    sink = SmtpSink("primary").start()
    metrics_port = free_port()
    config = tmp_path / "mrod.toml"
    config.write_text(
        f'[database]\npath = "{tmp_path / "mrod.db"}"\n'
        f'[lookupd]\nsocketmap = "127.0.0.1:{free_port()}"\npolicy = "127.0.0.1:{free_port()}"\n'
        f'[admin]\nlisten = "127.0.0.1:{free_port()}"\n'
        '[health]\ninterval = 0.5\ntimeout = 2.0\n'
        '[queue]\nenabled = false\n[checks]\nenabled = false\n'
        f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
    mrod = [sys.executable, "-m", "mrod", "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    subprocess.run([*mrod, "init"], check=True, capture_output=True, env=env)
    subprocess.run([*mrod, "relay", "add", "primary", "--host", "127.0.0.1", "--port", str(sink.port)],
                   check=True, capture_output=True, env=env)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([*mrod, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        got: dict = {}
        deadline = time.monotonic() + 20
        while got.get(("mrod_relay_up", (("relay", "primary"),))) != 1:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, f"relay never up in /metrics: {got}"
            time.sleep(0.2)
            got = asyncio.run(_scrape(metrics_port))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        log.close()
        sink.stop()
    assert code == 0, (tmp_path / "serve.log").read_text()


async def _scrape(port: int) -> dict:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                return samples(await response.text())
    except aiohttp.ClientError:
        return {}
