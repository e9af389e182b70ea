"""Operating a backup MX with real Postfix wired to mrod's policy service (check_policy_service
on the real `mrod lookupd` subprocess, from the very lines `mrod postfix-config` prints):
pause, queue quota, recipient verification with the primary up and down, a garbage policy
request, auto-flush when a primary comes back, and the queue read from the real instance.

The health job and the queue refresh run in the test process (the same objects `mrod serve`
runs), writing the database that the lookupd subprocess reads."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities import domains
from mrod.operations import postqueue, queueflush, queueread, queuestats
from mrod.operations.health import HealthMonitor
from tests.harness import free_port, wait_for_port
from tests.harness.primary import KnownRecipients, Primary
from tests.data import ACTOR, seed_file_sync
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

DEFERRED = 450          # DEFER_IF_PERMIT as smtpd says it
UNKNOWN = 550


def add_sections(mrod: Any, sections: dict[str, dict[str, Any]]) -> configmod.Config:
    """Append TOML sections to the lookupd's config file (before it starts); the reloaded config."""
    text = ""
    for name, values in sections.items():
        text += f"\n[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    with open(mrod.config_path, "a") as fh:
        fh.write(text)
    mrod.config = configmod.load(mrod.config_path, env={})
    return mrod.config


def start_with_policy(mrod_factory, **sections: dict[str, Any]):
    policy_port = free_port()
    mrod = mrod_factory(start=False, policy=f"127.0.0.1:{policy_port}")
    cfg = add_sections(mrod, {"policy": {"callout_timeout": 5.0}, **sections})
    return mrod, cfg, policy_port


def health_round(cfg: configmod.Config) -> list:
    return asyncio.run(HealthMonitor(cfg).run_once())


def set_domain(cfg: configmod.Config, name: str, **changes: Any) -> None:
    async def work() -> None:
        async with db.opened(cfg.database) as conn:
            await domains.update(conn, ACTOR, name, **changes)
    asyncio.run(work())


# -- pause, verify, garbage: one Postfix for the module (RCPT dialogues only) ------------------------


@pytest.fixture(scope="module")
def rcpt_setup(module_mrod_factory, module_postfix_factory):
    primary = Primary(KnownRecipients({"joe@verify.example", "joe@strict.example"}))
    primary.start()
    mrod, cfg, policy_port = start_with_policy(module_mrod_factory, health={"down_after": 1, "up_after": 1,
                                                                            "timeout": 3.0, "flush_on_up": False})
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
         domains=[
             {"name": "open.example", "relay": "primary"},
             {"name": "paused.example", "relay": "primary", "paused": True, "pause_reason": "primary migration"},
             {"name": "verify.example", "relay": "primary", "recipients": "verify", "verify_when_down": "accept"},
             {"name": "strict.example", "relay": "primary", "recipients": "verify", "verify_when_down": "defer"},
         ])
    mrod.start()
    wait_for_port(policy_port)
    postfix = module_postfix_factory(mrod.config)
    assert f"check_policy_service inet:127.0.0.1:{policy_port}" in postfix.postconf("smtpd_recipient_restrictions")
    yield mrod, cfg, postfix, primary, policy_port
    primary.stop()


def test_a_paused_domain_is_deferred_with_its_reason(rcpt_setup) -> None:
    mrod, cfg, postfix, _, _ = rcpt_setup
    reply = postfix.rcpt_reply("anyone@paused.example")
    assert reply.code == DEFERRED, reply
    assert "paused.example is paused" in reply.text and "primary migration" in reply.text
    assert postfix.rcpt_reply("anyone@open.example").code == 250
    # Unpaused: the very next RCPT passes (no reload, no cache).
    set_domain(cfg, "paused.example", paused=False)
    try:
        assert postfix.rcpt_reply("anyone@paused.example").code == 250
    finally:
        set_domain(cfg, "paused.example", paused=True)
    assert postfix.rcpt_reply("again@paused.example").code == DEFERRED


def test_verify_with_the_primary_up_and_down(rcpt_setup) -> None:
    mrod, cfg, postfix, primary, _ = rcpt_setup
    primary.start() if primary.controller is None else None
    assert {t.after for t in health_round(cfg)} <= {"up"}
    # Up: the primary is asked; it knows joe, refuses strangers -> Postfix refuses them too.
    assert postfix.rcpt_reply("joe@verify.example").code == 250
    refused = postfix.rcpt_reply("stranger@verify.example")
    assert refused.code == UNKNOWN and "unknown at the primary" in refused.text
    assert "stranger@verify.example" in primary.handler.asked
    assert postfix.rcpt_reply("joe@strict.example").code == 250
    # Down (the health job says so): known good recipients are accepted from the cache; an
    # unknown one gets the domain's choice — accept for verify.example, defer for strict.example.
    primary.stop()
    try:
        assert [t.after for t in health_round(cfg)] == ["down"]
        asked = len(primary.handler.asked)
        assert postfix.rcpt_reply("joe+tag@verify.example").code == 250
        assert postfix.rcpt_reply("newcomer@verify.example").code == 250
        assert postfix.rcpt_reply("joe@strict.example").code == 250
        deferred = postfix.rcpt_reply("newcomer@strict.example")
        assert deferred.code == DEFERRED and "unreachable" in deferred.text
        assert len(primary.handler.asked) == asked           # no callout to a primary known down
    finally:
        primary.start()
        health_round(cfg)


def test_garbage_on_the_policy_port_closes_that_connection_and_postfix_still_gets_answers(rcpt_setup) -> None:
    mrod, cfg, postfix, _, policy_port = rcpt_setup
    with socket.create_connection(("127.0.0.1", policy_port), timeout=5) as s:
        s.sendall(b"\x00\xff not a policy request \x01\n" * 50 + b"=\n\n")
        s.settimeout(5)
        assert s.recv(100) == b""         # closed, no answer
    reply = postfix.rcpt_reply("someone@paused.example")
    assert reply.code == DEFERRED and "paused" in reply.text
    assert postfix.rcpt_reply("someone@open.example").code == 250
    assert mrod.process is not None and mrod.process.poll() is None


# -- quota and the queue: a Postfix per test (its own queue) ------------------------------------------

SLOW_RETRIES = {"queue_run_delay": "3600s", "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s"}


def queued_deferred(entries: list[dict], count: int) -> bool:
    return len(entries) == count and all(e["queue_name"] == "deferred" for e in entries)


def test_a_domain_over_its_quota_is_deferred(mrod_factory, postfix_factory) -> None:
    dead = free_port()
    mrod, cfg, policy_port = start_with_policy(mrod_factory)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": dead}],
         domains=[{"name": "full.example", "relay": "primary", "quota_messages": 2, "include_subdomains": True},
                      {"name": "roomy.example", "relay": "primary"}])
    mrod.start()
    wait_for_port(policy_port)
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    postfix.smtp(["a@full.example"], payload("q1", "a@full.example"))
    postfix.smtp(["b@sub.full.example"], payload("q2", "b@sub.full.example"))
    postfix.wait_for_queue(lambda q: queued_deferred(q, 2))
    # Under quota until the queue reading says otherwise.
    assert postfix.rcpt_reply("c@full.example").code == 250
    report = asyncio.run(queuestats.refresh(cfg))
    assert [(q.name, q.messages) for q in report.rows.values()] == [("full.example", 2)]
    over = postfix.rcpt_reply("c@full.example")
    assert over.code == DEFERRED and "Queue for full.example is full" in over.text
    assert postfix.rcpt_reply("c@other.full.example").code == DEFERRED      # a subdomain shares it
    assert postfix.rcpt_reply("c@roomy.example").code == 250
    # The queue drains (delivered or deleted): the next reading lifts the deferral.
    postfix.delete_queue()
    postfix.wait_for_queue(lambda q: not q)
    asyncio.run(queuestats.refresh(cfg))
    assert postfix.rcpt_reply("c@full.example").code == 250


def test_auto_flush_delivers_within_seconds_of_the_primary_returning(
        mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
         domains=[{"name": "example.com", "relay": "primary", "include_subdomains": True},
                      {"name": "elsewhere.example", "relay": "primary"}])
    mrod.start()
    # Postfix would retry only after an hour: a delivery within seconds is the flush's doing.
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    # The plain flush (the careful one: tests/ops/test_careful_flush.py).
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)},
                              "health": {"down_after": 1, "up_after": 1, "timeout": 3.0}, "flush": {"careful": False}})
    assert [t.after for t in health_round(cfg)] == ["down"]
    first = postfix.smtp(["joe@example.com"], payload("flush-1", "joe@example.com"))
    second = postfix.smtp(["ann@sub.example.com"], payload("flush-2", "ann@sub.example.com"))
    postfix.wait_for_queue(lambda q: queued_deferred(q, 2))
    time.sleep(1)
    assert primary.messages == []
    primary.start()
    monitor = HealthMonitor(cfg)
    transitions = asyncio.run(monitor.run_once())
    assert [(t.relay, t.before, t.after) for t in transitions] == [("primary", "down", "up")]
    # Only the recipient domains with mail queued are flushed — the subdomain included.
    assert sorted((r.domain, r.ok) for r in monitor.last_flush) == [("example.com", True), ("sub.example.com", True)]
    delivered = primary.wait_for(2, timeout=20)
    assert sorted(m.rcpt_tos for m in delivered) == [("ann@sub.example.com",), ("joe@example.com",)]
    postfix.wait_for_queue(lambda q: not q)
    assert first.queue_id and second.queue_id


def test_queue_report_from_the_real_instance_and_the_cli(mrod_factory, postfix_factory) -> None:
    mrod = mrod_factory(start=False)
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
         domains=[{"name": "example.com", "relay": "primary", "include_subdomains": True}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    postfix.smtp(["a@example.com", "b@Sub.Example.com"], payload("r1", "a@example.com"))
    big = payload("r2", "c@example.com") + b"x" * 50000 + b"\r\n"
    postfix.smtp(["c@example.com"], big)
    postfix.wait_for_queue(lambda q: queued_deferred(q, 2))
    raw = postfix.queue()
    report = asyncio.run(queueread.read(cfg))
    assert report.messages == 2 and report.bad_lines == 0 and report.queues == {"deferred": 2}
    assert report.bytes == sum(e["message_size"] for e in raw)
    [row] = report.rows.values()
    assert (row.name, row.messages, row.recipients) == ("example.com", 2, 3)
    assert "Connection refused" in (row.last_reason or "")
    assert report.domains["sub.example.com"].messages == 1

    shown = json.loads(mrod.cli("queue", "--json").stdout)
    assert [(d["domain"], d["messages"]) for d in shown["domains"]] == [("example.com", 2)]
    one = json.loads(mrod.cli("queue", "--domain", "sub.example.com", "--json").stdout)
    assert [(d["domain"], d["messages"]) for d in one["domains"]] == [("sub.example.com", 1)]
    flushed = mrod.cli("queue", "--domain", "example.com", "--flush")
    assert "flush example.com: ok" in flushed.stdout and "flush sub.example.com: ok" in flushed.stdout


def test_postfix_down_is_a_clear_error(mrod_factory, postfix_factory) -> None:
    mrod = mrod_factory(start=False)
    postfix = postfix_factory(mrod.config, start=False)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    with pytest.raises(postqueue.QueueUnavailable, match="Postfix is not running"):
        asyncio.run(queueread.read(cfg))
    [result] = asyncio.run(queueflush.flush(cfg, ["example.com"]))
    assert not result.ok and "Postfix is not running" in result.detail
    failed = mrod.cli("queue", check=False)
    assert failed.returncode == 1 and "Postfix is not running" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
