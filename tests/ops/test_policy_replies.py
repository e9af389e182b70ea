"""Every answer of mrod's policy service as real Postfix finally sends it to the client.

smtpd wraps a policy action's text as ``<rcpt>: Recipient address rejected: TEXT``; mrod's
texts must therefore carry only mrod's own words (issue 14.3: the callout refusal used to say
the prefix twice). Pause, queue quota, verify (refused by the primary, and deferred while it
is down) and the fail-safe (an internal fault: mrod closes, Postfix applies its default
action) — each reply compared in full."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from mrod.operations import queuestats
from tests.harness import free_port, wait_for_port
from tests.harness.primary import KnownRecipients, Primary
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections, health_round, queued_deferred
from tests.data import seed_file_sync
from tests.postfix.conftest import payload

pytestmark = pytest.mark.postfix

PREFIX = "Recipient address rejected: "


def reply_of(postfix, recipient: str) -> tuple[int, str]:
    reply = postfix.rcpt_reply(recipient)
    return reply.code, reply.text


def test_policy_answers_as_postfix_sends_them(mrod_factory, postfix_factory) -> None:
    primary = Primary(KnownRecipients({"joe@verify.example"}))
    primary.start()
    policy_port = free_port()
    # allow_errors: the fail-safe case below is an internal fault, logged as one.
    mrod = mrod_factory(start=False, policy=f"127.0.0.1:{policy_port}", allow_errors=True)
    add_sections(mrod, {"policy": {"callout_timeout": 5.0},
                        "health": {"down_after": 1, "up_after": 1, "timeout": 3.0, "flush_on_up": False}})
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port},
                                   {"name": "dead", "host": "127.0.0.1", "port": free_port()}],
         domains=[
             {"name": "paused.example", "relay": "primary", "paused": True, "pause_reason": "primary migration"},
             {"name": "full.example", "relay": "dead", "quota_messages": 1},
             {"name": "verify.example", "relay": "primary", "recipients": "verify", "verify_when_down": "defer"},
             {"name": "quota.example", "relay": "primary", "quota_messages": 100},
         ])
    mrod.start()
    wait_for_port(policy_port)
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    cfg = add_sections(mrod, {"postfix": {"config_dir": str(postfix.etc)}})
    try:
        # Pause.
        assert reply_of(postfix, "anyone@paused.example") == (450, (
            f"4.7.1 <anyone@paused.example>: {PREFIX}Mail for paused.example is paused on this backup MX: "
            "primary migration"))
        # Quota: one message waits for a dead primary, the queue reading says so.
        postfix.smtp(["a@full.example"], payload("quota", "a@full.example"))
        postfix.wait_for_queue(lambda q: queued_deferred(q, 1))
        asyncio.run(queuestats.refresh(cfg))
        assert reply_of(postfix, "b@full.example") == (450, (
            f"4.7.1 <b@full.example>: {PREFIX}Queue for full.example is full (1 messages waiting, limit 1); "
            "try again later"))
        # Verify, the primary up: it refuses a stranger.
        assert {(t.relay, t.after) for t in health_round(cfg)} == {("primary", "up"), ("dead", "down")}
        assert reply_of(postfix, "joe@verify.example")[0] == 250
        assert reply_of(postfix, "Stranger@verify.example") == (550, (
            f"5.1.1 <Stranger@verify.example>: {PREFIX}User unknown at the primary mail server"))
        # Verify, the primary down: an unknown recipient gets the domain's choice (defer).
        primary.stop()
        assert [(t.relay, t.after) for t in health_round(cfg)] == [("primary", "down")]
        assert reply_of(postfix, "newcomer@verify.example") == (450, (
            f"4.7.1 <newcomer@verify.example>: {PREFIX}Cannot verify this recipient while the primary mail "
            "server of verify.example is unreachable; try again later"))
        # Fail-safe: the policy service cannot read what it needs (here: the queue readings are
        # gone); it sends nothing and closes, and Postfix applies its default action — a 4xx.
        with sqlite3.connect(mrod.db_path) as raw:
            raw.execute("ALTER TABLE queue_stat RENAME TO queue_stat_away")
        try:
            assert reply_of(postfix, "c@quota.example") == (451, (
                f"4.3.5 <c@quota.example>: {PREFIX}Server configuration problem"))
        finally:
            with sqlite3.connect(mrod.db_path) as raw:
                raw.execute("ALTER TABLE queue_stat_away RENAME TO queue_stat")
        assert reply_of(postfix, "c@quota.example")[0] == 250
        # Postfix logged each refusal with the prefix once.
        rejects = [line for line in postfix.log_text().splitlines() if "NOQUEUE: reject: RCPT" in line]
        assert len(rejects) == 5 and all(line.count(PREFIX) == 1 for line in rejects)
    finally:
        primary.stop()
