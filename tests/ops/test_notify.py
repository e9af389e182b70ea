"""Notifications end to end on both engines, with real receivers: an aiosmtpd SMTP server the
email channel submits to, and an aiohttp webhook receiver on loopback that checks the JSON, the
`text` field and the HMAC signature. A dead relay with many domains is ONE notice per
recipient, the "back" notice follows; dedup across rounds, the repeat interval, owners' own
digests, retries with backoff, a failing source, thresholds, the test message."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from mrod.entities import audit, domains, relays, users
from mrod.infra import db
from mrod.infra.errors import InvalidInput
from mrod.notify import channels, conditions, dispatcher, events, store
from mrod.operations import health, servejobs
from tests.conftest import make_config
from tests.harness.smtpsink import SmtpSink
from tests.harness.webhook import WebhookReceiver

DOMAINS = 40
SECRET = "s3cret-for-the-hook"


class Flushes:
    """Records what the health monitor asks to flush (the real flush is tested with real Postfix)."""

    def __init__(self) -> None:
        self.calls: list[dict[int, str]] = []

    async def __call__(self, cfg: Any, rows: dict[int, str]) -> list[Any]:
        self.calls.append(dict(rows))
        return []


def _mail(received: Any) -> Message:
    return message_from_bytes(received.content)


def _body(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.fixture
async def setting(tmp_path: Path, database: dict[str, str], actor: Any):
    """A relay 'primary' (its SMTP server down) with DOMAINS domains; alice owns two of them
    and has a contact address, bob owns one and has none; ops@ops.test is the operator."""
    (tmp_path / "secret").write_text(SECRET + "\n")
    inbox = SmtpSink("inbox").start()
    primary = SmtpSink("primary")          # down until started
    async with WebhookReceiver() as hook:
        cfg = make_config(tmp_path, health={"down_after": 1, "up_after": 1, "timeout": 3.0},
                          notify={"repeat": 3600.0, "retry_backoff": 60.0, "retry_max": 240.0, "max_attempts": 3,
                                  "email": {"to": ["ops@ops.test"], "smtp": f"127.0.0.1:{inbox.port}"},
                                  "webhook": {"url": hook.url, "secret_file": str(tmp_path / "secret")}})
        async with db.opened(cfg.database, create=True) as conn:
            await relays.add(conn, actor, name="primary", host="127.0.0.1", port=primary.port)
            alice = await users.add(conn, actor, "alice", "correct horse battery", perms=["domains_own"], rounds=4)
            bob = await users.add(conn, actor, "bob", "correct horse battery", perms=["domains_own"], rounds=4)
            await users.update(conn, actor, "alice", email="Alice@Owner.test")
            for n in range(DOMAINS):
                owner = alice.id if n < 2 else bob.id if n == 2 else None
                await domains.add(conn, actor, f"d{n:02}.example", relay="primary", owner_id=owner)
        try:
            yield cfg, inbox, primary, hook
        finally:
            inbox.stop()
            primary.stop()


def _signed(posted: Any) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), posted.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(posted.headers.get(channels.SIGNATURE_HEADER, ""), expected)


async def test_a_dead_relay_is_one_notice_per_recipient_and_the_back_notice_follows(setting: Any) -> None:
    cfg, inbox, primary, hook = setting
    monitor = health.HealthMonitor(cfg, flusher=Flushes())
    assert [t.after for t in await monitor.run_once()] == ["down"]

    first = await dispatcher.run_round(cfg)
    assert [(i.change, i.kind, i.subject) for i in first.items] == [("new", "relay_down", "primary")]
    assert first.queued == 3 and first.delivered == 3          # webhook, ops@, alice's contact
    [posted] = await hook.wait_for(1)
    assert _signed(posted)
    sent = posted.json
    assert "primary" in sent["text"] and "is down" in sent["text"] and f"its {DOMAINS} domain(s)" in sent["text"]
    assert sent["event"] == "relay_down" and sent["events"][0]["severity"] == "critical"
    assert len(sent["events"][0]["domains"]) == DOMAINS
    mails = inbox.wait_for(2)
    by_rcpt = {m.rcpt_tos[0]: _mail(m) for m in mails}
    assert set(by_rcpt) == {"ops@ops.test", "alice@owner.test"}
    assert "relay_down primary" in by_rcpt["ops@ops.test"]["Subject"]
    assert by_rcpt["ops@ops.test"]["Auto-Submitted"] == "auto-generated"
    owner_text = _body(by_rcpt["alice@owner.test"])
    assert "your domain(s): d00.example, d01.example" in owner_text and "d02.example" not in owner_text.split("your")[1]

    # The condition still holds: nothing more within [notify] repeat, however many rounds.
    for _ in range(3):
        again = await dispatcher.run_round(cfg)
        assert again.items == [] and again.queued == 0
    assert len(hook.received) == 1 and len(inbox.messages) == 2

    # Back up: the resolved notice, with how long it lasted, once.
    primary.start()
    assert [t.after for t in await monitor.run_once()] == ["up"]
    back = await dispatcher.run_round(cfg)
    assert [(i.change, i.kind) for i in back.items] == [("resolved", "relay_down")]
    [_, posted] = await hook.wait_for(2)
    assert _signed(posted) and "RESOLVED relay_down primary" in posted.json["text"]
    assert "is back up" in posted.json["text"] and "(after " in posted.json["text"]
    assert len(inbox.wait_for(4)) == 4
    assert (await dispatcher.run_round(cfg)).items == []

    async with db.opened(cfg.database) as conn:
        total, notices = await store.listing(conn)
        entries = await audit.entries(conn, entity="notification")
    assert total == 6 and all(n.status == "delivered" and n.attempts == 1 for n in notices)
    assert sum(e.action == "send" for e in entries) == 6 and sum(e.action == "delivered" for e in entries) == 6


async def test_a_condition_that_lasts_is_told_again_after_the_repeat_interval(setting: Any) -> None:
    cfg, inbox, _primary, hook = setting
    await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    assert len((await dispatcher.run_round(cfg, now)).items) == 1
    assert (await dispatcher.run_round(cfg, now + timedelta(seconds=3599))).items == []
    later = await dispatcher.run_round(cfg, now + timedelta(seconds=3601))
    assert [i.change for i in later.items] == ["repeat"]
    [_, posted] = await hook.wait_for(2)
    assert "CRITICAL (still) relay_down primary" in posted.json["text"]


async def test_many_domains_at_once_are_one_digest_per_recipient(setting: Any) -> None:
    cfg, inbox, _primary, hook = setting
    now = datetime.now(timezone.utc).replace(microsecond=0)
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            await conn.execute(
                "INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, updated_at)"
                " SELECT ?, id, 3, 3000, ?, ? FROM domain", (cfg.node.name, int(now.timestamp()) - 7200, db.now()))
    result = await dispatcher.run_round(cfg, now)
    assert {i.kind for i in result.items} == {"queue_old"} and len(result.items) == DOMAINS
    assert result.queued == 3
    [posted] = await hook.wait_for(1)
    assert posted.json["event"] == "digest" and len(posted.json["events"]) == DOMAINS
    assert posted.json["title"].endswith(f"{DOMAINS} notices: {DOMAINS} queue_old")
    alice = next(_mail(m) for m in inbox.wait_for(2) if m.rcpt_tos == ("alice@owner.test",))
    assert "2 notices" in alice["Subject"] and "d02.example" not in _body(alice)


async def test_a_failing_receiver_is_retried_with_backoff_and_shown_failing(setting: Any) -> None:
    cfg, _inbox, _primary, hook = setting
    hook.answers = [500, 502]
    await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    await dispatcher.run_round(cfg, now)
    async with db.opened(cfg.database) as conn:
        [notice] = (await store.listing(conn, channel="webhook"))[1]
        states = {s["channel"]: s for s in await dispatcher.channel_states(conn, cfg)}
    assert notice.status == "retrying" and notice.attempts == 1 and "HTTP 500" in (notice.last_error or "")
    assert notice.next_attempt_at == db.stamp(now + timedelta(seconds=60))
    assert states["webhook"]["state"] == "failing" and states["webhook"]["retrying"] == 1
    assert states["email"]["state"] == "ok"

    # Not before its time; then the second attempt fails too and waits twice as long.
    await dispatcher.run_round(cfg, now + timedelta(seconds=30))
    assert len(hook.received) == 1
    await dispatcher.run_round(cfg, now + timedelta(seconds=61))
    async with db.opened(cfg.database) as conn:
        [notice] = (await store.listing(conn, channel="webhook"))[1]
    assert notice.attempts == 2 and notice.next_attempt_at == db.stamp(now + timedelta(seconds=61 + 120))
    await dispatcher.run_round(cfg, now + timedelta(seconds=182))
    async with db.opened(cfg.database) as conn:
        [notice] = (await store.listing(conn, channel="webhook"))[1]
        states = {s["channel"]: s for s in await dispatcher.channel_states(conn, cfg)}
    assert notice.status == "delivered" and notice.attempts == 3 and len(hook.received) == 3
    assert states["webhook"]["state"] == "ok" and states["webhook"]["retrying"] == 0
    assert [p.json["event"] for p in hook.received] == ["relay_down"] * 3      # the same message


async def test_a_receiver_that_keeps_failing_is_given_up_after_max_attempts(setting: Any) -> None:
    cfg, _inbox, _primary, hook = setting
    hook.answers = [500] * 10
    await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for minutes in (0, 2, 6, 20):
        await dispatcher.run_round(cfg, now + timedelta(minutes=minutes))
    async with db.opened(cfg.database) as conn:
        [notice] = (await store.listing(conn, channel="webhook"))[1]
    assert notice.status == "failed" and notice.attempts == 3 and len(hook.received) == 3


async def test_a_failing_source_keeps_what_it_reported_and_the_others_go_on(setting: Any) -> None:
    cfg, _inbox, _primary, hook = setting
    await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
    await dispatcher.run_round(cfg)

    async def broken(ctx: events.SourceContext) -> list[events.Event]:
        raise RuntimeError("cannot read")

    original = events.sources()["relays_down"]
    events.register("relays_down", broken)
    try:
        assert (await dispatcher.run_round(cfg)).items == []       # not "resolved"
    finally:
        events.register("relays_down", original)
    assert len(hook.received) == 1


async def test_thresholds_dns_errors_and_mail_about_to_bounce(setting: Any) -> None:
    cfg, _inbox, _primary, hook = setting
    now = datetime.now(timezone.utc).replace(microsecond=0)
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            d00 = (await domains.get(conn, "d00.example")).id
            d01 = (await domains.get(conn, "d01.example")).id
            await conn.execute("INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, updated_at)"
                               " VALUES (?, ?, 1500, 1, ?, ?)", (cfg.node.name, d00, int(now.timestamp()) - 60,
                                                                  db.now()))
            await conn.execute("INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, updated_at)"
                               " VALUES (?, ?, 2, 1, ?, ?)", (cfg.node.name, d01,
                                                              int(now.timestamp()) - 4 * 86400 - 3600, db.now()))
            await conn.execute("INSERT INTO domain_check (node, domain_id, status, findings, checked_at)"
                               " VALUES (?, ?, 'error', ?, ?)",
                               (cfg.node.name, d00, json.dumps([{"level": "error", "code": "no-mx",
                                                                 "message": "no MX record names this host"}]),
                                db.now()))

    async def five_days(ctx: events.SourceContext, names: list[str]) -> dict[str, float]:
        return {name: 5 * 86400.0 for name in names}

    conditions.set_queue_lifetimes(five_days)
    try:
        result = await dispatcher.run_round(cfg, now)
    finally:
        conditions.set_queue_lifetimes(conditions.domain_lifetimes)
    found = {(i.kind, i.subject): i.text for i in result.items}
    assert set(found) == {("queue_long", "d00.example"), ("dns_error", "d00.example"),
                          ("queue_old", "d01.example"), ("queue_expiring", "d01.example")}
    assert "1500 message(s) queued (over 1000)" in found[("queue_long", "d00.example")]
    assert "no MX record names this host" in found[("dns_error", "d00.example")]
    assert "will bounce in about 82800 s (23h 0m)" in found[("queue_expiring", "d01.example")]


def test_postfix_time_values() -> None:
    assert conditions.postfix_duration("5d") == 5 * 86400
    assert conditions.postfix_duration("3600s") == 3600
    assert conditions.postfix_duration("2") == 2 * 86400
    with pytest.raises(ValueError):
        conditions.postfix_duration("soon")


async def test_a_test_message_goes_now_and_says_how_it_went(setting: Any) -> None:
    cfg, inbox, _primary, hook = setting
    async with db.opened(cfg.database) as conn:
        [ok] = await dispatcher.send_test(conn, cfg, "webhook", "tester")
        [mail] = await dispatcher.send_test(conn, cfg, "email", "tester")
        hook.answers = [403]
        [bad] = await dispatcher.send_test(conn, cfg, "webhook", "tester")
        with pytest.raises(InvalidInput, match="not a channel"):
            await dispatcher.send_test(conn, cfg, "pager", "tester")
    assert ok.status == "delivered" and mail.status == "delivered"
    assert bad.status == "failed" and "HTTP 403" in (bad.last_error or "")
    assert hook.received[0].json["event"] == "test" and "sent by tester" in hook.received[0].json["text"]
    assert "a test of the email channel" in _body(_mail(inbox.wait_for(1)[0]))


async def test_a_channel_not_set_up_cannot_be_tested(cfg: Any) -> None:
    async with db.opened(cfg.database) as conn:
        with pytest.raises(InvalidInput, match="webhook channel is not set up"):
            await dispatcher.send_test(conn, cfg, "webhook", "tester")


async def test_mrod_serve_runs_the_job_when_a_channel_is_set_up(tmp_path: Path, setting: Any) -> None:
    cfg, _inbox, _primary, hook = setting
    [job] = [j for j in servejobs.jobs(cfg) if j.name == "notify"]
    assert job.interval == cfg.notify.interval
    await health.HealthMonitor(cfg, flusher=Flushes()).run_once()
    await job.run()                                  # one round, as mrod serve runs it
    assert len(await hook.wait_for(1)) == 1
    quiet = make_config(tmp_path / "quiet", notify={"email": {"owners": False}})
    assert "notify" not in [j.name for j in servejobs.jobs(quiet)]
    off = make_config(tmp_path / "off", notify={"enabled": False, "webhook": {"url": hook.url}})
    assert "notify" not in [j.name for j in servejobs.jobs(off)]


async def test_the_back_notice_says_how_long_the_primary_was_down(setting: Any) -> None:
    cfg, _inbox, primary, hook = setting
    monitor = health.HealthMonitor(cfg, flusher=Flushes())
    await monitor.run_once()                              # down now, by the probe
    now = datetime.now(timezone.utc).replace(microsecond=0)
    await dispatcher.run_round(cfg, now + timedelta(minutes=30))     # first seen by notify later
    primary.start()
    await monitor.run_once()
    back = await dispatcher.run_round(cfg, now + timedelta(hours=2))
    [item] = back.items
    assert item.change == "resolved" and "(2h 0m))" in item.text    # from the probe's "down since", not 1h 30m


async def test_a_failing_recipient_source_and_an_expiring_relay_certificate_are_told(setting: Any) -> None:
    """The features' own sources (mrod/notify/featureevents.py): a recipient source whose sync
    failed, a relay certificate that expires in 5 days; both resolve when their state clears."""
    cfg, _inbox, _primary, _hook = setting
    now = datetime.now(timezone.utc).replace(microsecond=0)
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            await conn.execute("INSERT INTO recipient_source (name, kind, url, format, created_at, updated_at, error,"
                               " failing_since) VALUES ('crm', 'url', 'http://127.0.0.1:9/x', 'json', ?, ?,"
                               " 'connection refused', ?)", (db.now(), db.now(), db.now()))
            relay_id = (await relays.get(conn, "primary")).id
            await conn.execute("INSERT INTO relay_health (node, relay_id, state, since, cert_not_after, cert_names)"
                               " VALUES (?, ?, 'up', ?, ?, 'mx.primary.test')",
                               (cfg.node.name, relay_id, db.now(), db.stamp(now + timedelta(days=5))))
    result = await dispatcher.run_round(cfg, now)
    found = {(i.kind, i.subject): i.text for i in result.items}
    assert set(found) == {("source_failing", "crm"), ("relay_certificate", "primary")}
    assert "recipient source crm fails: connection refused" in found[("source_failing", "crm")]
    assert "expires" in found[("relay_certificate", "primary")]
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            await conn.execute("UPDATE recipient_source SET error = NULL, failing_since = NULL")
            await conn.execute("UPDATE relay_health SET cert_not_after = ?", (db.stamp(now + timedelta(days=90)),))
    later = await dispatcher.run_round(cfg, now + timedelta(seconds=1))
    assert {(i.change, i.kind) for i in later.items} == {("resolved", "source_failing"),
                                                        ("resolved", "relay_certificate")}


async def test_a_breaker_hold_is_told_and_a_domains_own_retention_judges_expiry(setting: Any) -> None:
    """The circuit breaker's hold (domain_hold, reason breaker) is a critical notice until the
    domain is released; mail about to bounce is judged by the domain's own queue_lifetime."""
    cfg, _inbox, _primary, _hook = setting
    now = datetime.now(timezone.utc).replace(microsecond=0)
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            d00 = (await domains.get(conn, "d00.example")).id
            await conn.execute("INSERT INTO domain_hold (domain_id, reason, held_at, held_by, node, detail)"
                               " VALUES (?, 'breaker', ?, 'breaker', ?, '550 5.1.1 no such user')",
                               (d00, db.now(), cfg.node.name))
            d01 = (await domains.get(conn, "d01.example")).id
            await conn.execute("UPDATE domain SET queue_lifetime = 7200 WHERE id = ?", (d01,))
            await conn.execute("INSERT INTO queue_stat (node, domain_id, messages, bytes, oldest, updated_at)"
                               " VALUES (?, ?, 3, 1, ?, ?)", (cfg.node.name, d01, int(now.timestamp()) - 3600,
                                                              db.now()))
    result = await dispatcher.run_round(cfg, now)
    found = {(i.kind, i.subject): i.text for i in result.items}
    assert "550 5.1.1 no such user" in found[("breaker_hold", "d00.example")]
    assert "mrod domain release d00.example" in found[("breaker_hold", "d00.example")]
    # 1 h of its own 2 h lifetime gone: within [notify] expire_within (a day) by its own retention.
    assert "of a 7200 s (2h 0m) lifetime" in found[("queue_expiring", "d01.example")]
    async with db.opened(cfg.database) as conn:
        async with db.transaction(conn):
            await conn.execute("DELETE FROM domain_hold")
    later = await dispatcher.run_round(cfg, now + timedelta(seconds=1))
    assert ("resolved", "breaker_hold") in {(i.change, i.kind) for i in later.items}
