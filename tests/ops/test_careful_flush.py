"""A primary's return with real Postfix: the careful flush and its circuit breaker, domain
hold and release by hand, the outage history of a down/up cycle, and mail the primary refused
after the backup accepted it (counted from Postfix's own log).

The health monitor, the queue job and the log watch run in the test process (the objects
`mrod serve` runs) against a real Postfix whose retries wait an hour: what gets delivered
within seconds is mrod's doing."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest

from mrod.infra import db
from mrod.operations import deliveries, holdqueue, metrics, outages, queuestats
from mrod.operations.health import HealthMonitor
from tests.data import seed_file_sync
from tests.harness.primary import KnownRecipients, Primary
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections, health_round, queued_deferred
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

RECIPIENTS = [f"user{i}@example.com" for i in range(4)]
HEALTH = {"down_after": 1, "up_after": 1, "timeout": 3.0}


def setup(mrod_factory: Any, postfix_factory: Any, port: int, postfix: dict[str, str] | None = None,
          **sections: Any) -> tuple[Any, Any, Any]:
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": port}],
                   domains=[{"name": "example.com", "relay": "primary"}])
    mrod.start()
    instance = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(instance.etc), **(postfix or {})}, "health": HEALTH,
                              **sections})
    return mrod, cfg, instance


def queue_backlog(postfix: Any, recipients: list[str] = RECIPIENTS) -> None:
    for n, rcpt in enumerate(recipients):
        postfix.smtp([rcpt], payload(f"backlog-{n}", rcpt), sender="someone@client.test")
    postfix.wait_for_queue(lambda q: queued_deferred(q, len(recipients)))


def no_bounce(postfix: Any) -> None:
    text = postfix.log_text()
    assert "status=bounced" not in text and "sender non-delivery notification" not in text, text[-3000:]


def test_a_primary_returning_with_550_trips_the_breaker_and_nothing_bounces(
        mrod_factory, postfix_factory) -> None:
    refusing = KnownRecipients(set())                 # 550 5.1.1 for every recipient
    primary = Primary(refusing)
    mrod, cfg, postfix = setup(mrod_factory, postfix_factory, primary.port)
    assert [t.after for t in health_round(cfg)] == ["down"]
    queue_backlog(postfix)
    primary.start()
    try:
        monitor = HealthMonitor(cfg)
        assert [t.after for t in asyncio.run(monitor.run_once())] == ["up"]
        [result] = monitor.last_flush
        assert (result.domain, result.ok) == ("example.com", False) and "breaker tripped" in result.detail
        assert "refused 4 of the first 4" in result.detail
        # The trial asked the primary about each message's recipient, and sent nothing.
        assert sorted(refusing.asked) == RECIPIENTS
        held = postfix.wait_for_queue(lambda q: len(q) == 4 and all(e["queue_name"] == "hold" for e in q))
        assert {e["recipients"][0]["address"] for e in held} == set(RECIPIENTS)
        no_bounce(postfix)
        holds = json.loads(mrod.cli("domain", "holds", "--json").stdout)
        assert [(h["domain"], h["reason"]) for h in holds] == [("example.com", "breaker")]
        # New mail for a tripped domain is held at the queue job's next round.
        postfix.smtp(["late@example.com"], payload("late", "late@example.com"))
        asyncio.run(holdqueue.apply(cfg))
        postfix.wait_for_queue(lambda q: len(q) == 5 and all(e["queue_name"] == "hold" for e in q))
        no_bounce(postfix)
        # The primary is fixed: released by hand, everything is delivered, and still no bounce.
        refusing.known.update([*RECIPIENTS, "late@example.com"])
        released = mrod.cli("domain", "release", "example.com")
        assert "released" in released.stdout and "5 given back" in released.stdout
        postfix.wait_for_queue(lambda q: not q)
        assert postfix.log_text().count("status=sent") == 5
        no_bounce(postfix)
        assert json.loads(mrod.cli("domain", "holds", "--json").stdout) == []
    finally:
        primary.stop()


def test_a_primary_returning_with_250_gets_everything_and_the_outage_is_recorded(
        mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    sink = smtp_sink_factory("primary", start=True)
    mrod, cfg, postfix = setup(mrod_factory, postfix_factory, sink.port)

    async def read() -> list[dict[str, Any]]:
        async with db.opened(cfg.database) as conn:
            return await outages.history(conn)
    assert [t.after for t in health_round(cfg)] == ["up"]
    sink.stop()
    assert [t.after for t in health_round(cfg)] == ["down"]
    queue_backlog(postfix)
    asyncio.run(queuestats.refresh(cfg))            # the queue job: the outage's mail counted
    [open_outage] = asyncio.run(read())
    assert open_outage["ongoing"] and open_outage["queued"] == 4
    deadline = time.monotonic() + 2                 # stamps are whole seconds: let one pass
    while db.now() <= open_outage["started_at"] and time.monotonic() < deadline:
        time.sleep(0.05)
    sink.start()
    monitor = HealthMonitor(cfg)
    assert [t.after for t in asyncio.run(monitor.run_once())] == ["up"]
    [result] = monitor.last_flush
    assert result.ok and "0 of 4 refused" in result.detail and "4 message(s) released" in result.detail
    assert sorted(m.rcpt_tos[0] for m in sink.wait_for(4)) == RECIPIENTS
    postfix.wait_for_queue(lambda q: not q)
    asyncio.run(queuestats.refresh(cfg))            # nothing left: the flush is over
    [outage] = asyncio.run(read())
    assert outage["relay"] == "primary" and outage["node"] == cfg.node.name and not outage["ongoing"]
    assert outage["queued"] == 4 and outage["duration_s"] > 0 and outage["flush_s"] >= 0
    shown = json.loads(mrod.cli("health", "--history", "example.com", "--json").stdout)
    assert [(r["relay"], len(r["outages"])) for r in shown] == [("primary", 1)]
    assert 0.99 < shown[0]["availability_7d"] < 1.0
    text = mrod.cli("health", "--history", "primary").stdout
    assert "relay primary" in text and "over 30 days" in text
    bad = mrod.cli("health", "--history", "nosuch", check=False)
    assert bad.returncode == 1 and bad.stderr == "mrod: error: 'nosuch' is neither a relay nor a domain\n"


def test_a_domain_held_by_hand_keeps_its_mail_until_released(
        mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    sink = smtp_sink_factory("primary", start=False)
    mrod, cfg, postfix = setup(mrod_factory, postfix_factory, sink.port)
    queue_backlog(postfix, RECIPIENTS[:2])
    held = mrod.cli("domain", "hold", "example.com")
    assert "held (manual" in held.stdout and "2 message(s) put on hold" in held.stdout
    postfix.wait_for_queue(lambda q: len(q) == 2 and all(e["queue_name"] == "hold" for e in q))
    sink.start()
    postfix.flush()                                  # Postfix is told to deliver everything: held mail stays
    assert [t.after for t in health_round(cfg)] == ["up"]     # and the careful flush leaves it alone
    postfix.wait_for_queue(lambda q: len(q) == 2 and all(e["queue_name"] == "hold" for e in q))
    assert sink.messages == []
    mrod.cli("domain", "release", "example.com")
    assert sorted(m.rcpt_tos[0] for m in sink.wait_for(2)) == RECIPIENTS[:2]
    postfix.wait_for_queue(lambda q: not q)
    bad = mrod.cli("domain", "hold", "nowhere.example", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "does not exist" in bad.stderr


def test_mail_the_primary_refuses_after_the_backup_accepted_it_is_counted(
        mrod_factory, postfix_factory) -> None:
    primary = Primary(KnownRecipients({"joe@example.com"}))
    primary.start()
    try:
        mrod, cfg, postfix = setup(mrod_factory, postfix_factory, primary.port)
        watch = deliveries.DeliveryWatch(cfg)        # the log found as mrod finds it: Postfix's maillog_file
        assert asyncio.run(watch.run_once()) == {}   # first round: from the end of the log
        mark = postfix.log_mark()
        postfix.smtp(["joe@example.com"], payload("ok", "joe@example.com"))
        postfix.smtp(["gone@example.com"], payload("gone", "gone@example.com"))
        postfix.wait_for_log(r"to=<gone@example\.com>.*status=bounced", since=mark)
        postfix.wait_for_log(r"to=<joe@example\.com>.*status=sent", since=mark)
        assert asyncio.run(watch.run_once()) == {"example.com": 1}
        assert asyncio.run(watch.run_once()) == {}   # counted once

        metrics.use_database(cfg.database, cfg.node.name)
        try:
            text = asyncio.run(metrics.render_async()).decode()
        finally:
            metrics.use_database(None)
        assert 'mrod_primary_refused_total{domain="example.com"} 1.0' in text
    finally:
        primary.stop()


class RefusesContent(KnownRecipients):
    """A primary whose content filter refuses every message after DATA (a dry trial passes)."""

    async def handle_DATA(self, server, session, envelope):
        return "554 5.7.1 Message refused by the content filter"


def test_a_primary_refusing_after_data_is_caught_by_the_watch_and_the_rest_held(
        mrod_factory, postfix_factory) -> None:
    recipients = [f"user{i}@example.com" for i in range(6)]
    primary = Primary(RefusesContent(set(recipients)))
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
                   domains=[{"name": "example.com", "relay": "primary"}])
    mrod.start()
    # The pace [flush] rate_delay sets (through `mrod postfix-config`): one delivery a second.
    postfix = postfix_factory(mrod.config, settings={**SLOW_RETRIES, "relay_destination_rate_delay": "1s"})
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}, "health": HEALTH,
                              "flush": {"trial_messages": 2, "trip_refusals": 2, "watch_seconds": 20}})
    assert [t.after for t in health_round(cfg)] == ["down"]
    queue_backlog(postfix, recipients)
    primary.start()
    try:
        monitor = HealthMonitor(cfg)
        assert [t.after for t in asyncio.run(monitor.run_once())] == ["up"]
        [result] = monitor.last_flush
        assert not result.ok and "refused 2 of the first 2 message(s) delivered after the release" in result.detail
        bounced = len(re.findall(r"to=<user\d@example\.com>.*status=bounced", postfix.log_text()))
        assert 2 <= bounced <= 3, bounced             # the damage is what the pace let through
        held = [e for e in postfix.queue() if e["queue_name"] == "hold"]
        assert len(held) == 6 - bounced
        holds = json.loads(mrod.cli("domain", "holds", "--json").stdout)
        assert [(h["domain"], h["reason"]) for h in holds] == [("example.com", "breaker")]
    finally:
        primary.stop()


def test_without_postsuper_the_careful_flush_flushes_at_once(mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    sink = smtp_sink_factory("primary", start=False)
    # postsuper refused, as for a service user without the sudo rule.
    mrod, cfg, postfix = setup(mrod_factory, postfix_factory, sink.port, postfix={"postsuper": "/bin/false"})
    assert [t.after for t in health_round(cfg)] == ["down"]
    queue_backlog(postfix, RECIPIENTS[:2])
    sink.start()
    monitor = HealthMonitor(cfg)
    assert [t.after for t in asyncio.run(monitor.run_once())] == ["up"]
    [result] = monitor.last_flush
    assert result.ok and "careful flush not possible" in result.detail and "flushed at once" in result.detail
    assert sorted(m.rcpt_tos[0] for m in sink.wait_for(2)) == RECIPIENTS[:2]
