"""The lookup service's metrics on the lean path: exact counts, a sampled latency histogram
(one lookup in LATENCY_SAMPLE, and every lookup that waited for the database)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from mrod.lookupd.service import LATENCY_SAMPLE
from tests.lookupd.conftest import SocketmapClient


def histogram_count(service, label: str) -> int:
    return sum(next((counts for value, counts, _ in service.latency.readings() if value == label), []))


async def test_counts_are_exact_and_latency_is_sampled(lookupd_factory) -> None:
    d = await lookupd_factory()
    service = d.service
    before = service.counts[("transport", "OK")], histogram_count(service, "transport")
    n = 10 * LATENCY_SAMPLE
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    for i in range(n):
        assert await c.ask("transport", f"u{i}@example.com") == "OK relay:[mx1.example.net]:25"
    assert service.counts[("transport", "OK")] - before[0] == n
    assert histogram_count(service, "transport") - before[1] == n // LATENCY_SAMPLE
    assert service.counts[("relay_domains", "NOTFOUND")] >= 1      # the start-up check
    for _ in range(3):
        assert (await c.ask("nonsense", "x")).startswith("TEMP ")
    assert service.counts[("other", "TEMP")] == 3
    await c.close()


async def test_a_lookup_that_waited_is_always_timed(lookupd_factory) -> None:
    d = await lookupd_factory(lookup_deadline=0.2)
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    d.service.close()
    holder = sqlite3.connect(d.config.database.path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE relay SET updated_at = updated_at")
    try:
        before = histogram_count(d.service, "relay_domains")
        for _ in range(3):
            assert (await c.ask("relay_domains", "example.com")).startswith("TEMP ")
        assert histogram_count(d.service, "relay_domains") - before == 3
        assert d.service.counts[("relay_domains", "TEMP")] == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await asyncio.sleep(0)
    await c.close()


async def test_the_panel_process_reads_lookupds_counters_through_its_socket(lookupd_factory, tmp_path) -> None:
    # `mrod serve`: lookupd and the panel are separate processes; the panel's /metrics reads
    # lookupd's in-memory families from a private unix socket.
    from mrod.lookupd.metricsserver import LookupdMetricsSocket, remote_source

    d = await lookupd_factory()
    c = await SocketmapClient.connect(d.listener("socketmap").port)
    for _ in range(3):
        assert await c.ask("relay_domains", "example.com") == "OK example.com"
    path = str(tmp_path / "lookupd-metrics.sock")
    server = LookupdMetricsSocket(path)
    await server.start()
    try:
        families = await asyncio.to_thread(remote_source(path))
    finally:
        await server.stop()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    assert samples[("mrod_lookups_total", (("answer", "OK"), ("map", "relay_domains")))] == 3
    assert ("mrod_lookupd_connections", ()) in samples
    with pytest.raises(OSError):
        remote_source(str(tmp_path / "nothing.sock"))()
    await c.close()
