"""Auto-flush for every route (issue 14.5): a domain routed by its own host override, its
primary down then back, with real Postfix whose next retry is an hour away — the mail is
delivered within seconds, flushed by mrod's next-hop monitor; an MX-routed domain's MX hosts
found through real named and probed; relay routes left to the relay health monitor."""

from __future__ import annotations

import asyncio
import time

import pytest

from mrod.answers.routestore import RouteStore
from mrod.operations.nexthops import NextHop, NextHopMonitor, waiting_hops
from tests.harness.named import zone_text
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections, queued_deferred
from tests.data import seed_file_sync
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix


def test_host_override_domain_is_flushed_when_its_primary_answers_again(
        mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)
    relay_sink = smtp_sink_factory("relay", start=False)
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "watched", "host": "127.0.0.1", "port": relay_sink.port}],
         domains=[{"name": "own.example", "host": "127.0.0.1", "port": primary.port, "include_subdomains": True},
                      {"name": "byrelay.example", "relay": "watched"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)},
                              "health": {"down_after": 1, "up_after": 2, "timeout": 3.0}})
    postfix.smtp(["joe@own.example"], payload("hop-1", "joe@own.example"))
    postfix.smtp(["ann@sub.own.example"], payload("hop-2", "ann@sub.own.example"))
    postfix.smtp(["bob@byrelay.example"], payload("hop-3", "bob@byrelay.example"))
    postfix.wait_for_queue(lambda q: queued_deferred(q, 3))
    monitor = NextHopMonitor(cfg)
    hop = NextHop("host", "127.0.0.1", primary.port, "smtp", "may")
    # Down: one failed probe is enough (down_after = 1); the relay's domain is not ours to watch.
    [down] = asyncio.run(monitor.run_once())
    assert (down.hop, down.before, down.after, down.domains) == (hop, "unknown", "down",
                                                                  ("own.example", "sub.own.example"))
    assert monitor.last_flush == []
    primary.start()
    # Back: one answer is not enough (up_after = 2), the second flips it and flushes.
    assert asyncio.run(monitor.run_once()) == []
    assert monitor.last_flush == []
    time.sleep(1)
    assert primary.messages == []           # Postfix itself would wait an hour
    [up] = asyncio.run(monitor.run_once())
    assert (up.hop, up.before, up.after) == (hop, "down", "up")
    assert sorted((r.domain, r.ok) for r in monitor.last_flush) == [("own.example", True), ("sub.own.example", True)]
    delivered = primary.wait_for(2, timeout=20)
    assert sorted(m.rcpt_tos for m in delivered) == [("ann@sub.own.example",), ("joe@own.example",)]
    # The relay-routed message still waits: its relay is the health monitor's to flush.
    [left] = postfix.wait_for_queue(lambda q: len(q) == 1)
    assert left["recipients"][0]["address"] == "bob@byrelay.example"
    # Mail gone: the hop is forgotten.
    asyncio.run(monitor.run_once())
    assert monitor.states == {}


def test_mx_routed_domain_probes_its_most_preferred_mx_hosts(
        start_named, mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    primary = smtp_sink_factory("mx-primary", start=False)
    named = start_named({"mx.example": zone_text(
        "mx.example", "@ MX 10 primary\n@ MX 20 backup\n@ MX 30 other\n"
                      "primary A 127.0.0.1\nbackup A 127.0.0.2\nother A 127.0.0.3\n")})
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, domains=[{"name": "mx.example", "mx": True}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)},
                              "health": {"down_after": 1, "up_after": 1, "timeout": 3.0},
                              "checks": {"resolver": "127.0.0.1", "resolver_port": named.port,
                                         "mx_names": ["backup.mx.example"]}})
    store = RouteStore.open(cfg.database.path)
    try:
        assert waiting_hops(["mx.example", "elsewhere.example"], store) == {
            NextHop("mx", "mx.example", 25, "smtp", "may"): {"mx.example"}}
    finally:
        store.close()
    # The MX hosts more preferred than this host (backup.mx.example), on the sink's port here
    # (Postfix would use 25).
    monitor = NextHopMonitor(cfg, mx_port=primary.port)
    assert asyncio.run(monitor.mx_hosts("mx.example")) == ["primary.mx.example"]
    postfix.smtp(["joe@mx.example"], payload("mx-1", "joe@mx.example"))
    postfix.wait_for_queue(lambda q: queued_deferred(q, 1))
    [down] = asyncio.run(monitor.run_once())
    assert (down.hop.label(), down.after) == ("MX of mx.example", "down")
    primary.start()
    [up] = asyncio.run(monitor.run_once())
    assert up.after == "up" and up.domains == ("mx.example",)
    # Postfix accepted the flush request (it cannot deliver by MX here: no DNS in the test instance).
    assert [(r.domain, r.ok) for r in monitor.last_flush] == [("mx.example", True)]


def test_serve_runs_the_next_hop_monitor_with_auto_flush() -> None:
    from mrod.infra import config as configmod
    from mrod.operations import servejobs
    assert "nexthops" in [j.name for j in servejobs.jobs(configmod.from_dict({}))]
    off = configmod.from_dict({"health": {"flush_on_up": False}})
    assert "nexthops" not in [j.name for j in servejobs.jobs(off)]
