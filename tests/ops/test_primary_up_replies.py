"""Accept only when needed (issue 20.1), as real Postfix answers at RCPT with mrod's policy
service: a domain in ``defer`` mode gets a 4xx while this node sees its primary up, and 250
when the primary is down, when its health is unknown, for postmaster@, and for a client in
``[policy] exempt_networks`` (presented through Postfix's XCLIENT, which smtpd then gives the
policy service as client_address)."""

from __future__ import annotations

import smtplib
import time

import pytest

from tests.harness import free_port, wait_for_port
from tests.harness.primary import KnownRecipients, Primary
from tests.harness.smtpclient import CLIENT_HELO, CLIENT_SENDER
from tests.ops.test_postfix_ops import SLOW_RETRIES, add_sections, health_round
from tests.data import seed_file_sync

pytestmark = pytest.mark.postfix

PREFIX = "Recipient address rejected: "
DEFERRED = (450, "4.7.1 <{rcpt}>: " + PREFIX + "This is a backup MX for {domain}; deliver to its primary mail server")
EXEMPT = "192.0.2.0/24"


def reply_of(postfix, recipient: str) -> tuple[int, str]:
    reply = postfix.rcpt_reply(recipient)
    return reply.code, reply.text


def until(postfix, recipient: str, expected: tuple[int, str]) -> tuple[int, str]:
    """lookupd reads this node's health states every second: the reply follows within a few."""
    deadline = time.monotonic() + 10
    while True:
        found = reply_of(postfix, recipient)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def rcpt_as(port: int, address: str, recipient: str) -> int:
    """RCPT as a client at ``address`` (XCLIENT ADDR: smtpd_authorized_xclient_hosts allows us)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=CLIENT_HELO, timeout=60) as client:
        client.ehlo()
        code, text = client.docmd("XCLIENT", f"ADDR={address}")
        assert code == 220, text      # XCLIENT restarts the session: a new greeting
        client.ehlo()
        client.mail(CLIENT_SENDER)
        return client.rcpt(recipient)[0]


def test_primary_up_defers_and_everything_else_is_accepted(mrod_factory, postfix_factory) -> None:
    primary = Primary(KnownRecipients(set()))
    primary.start()
    policy_port = free_port()
    mrod = mrod_factory(start=False, policy=f"127.0.0.1:{policy_port}")
    add_sections(mrod, {"policy": {"exempt_networks": [EXEMPT]},
                        "health": {"down_after": 1, "up_after": 1, "timeout": 3.0, "flush_on_up": False}})
    seed_file_sync(mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port,
                                          "when_primary_up": "defer"},
                                         {"name": "never", "host": "127.0.0.1", "port": free_port()}],
                   domains=[{"name": "backup.example", "relay": "primary"},
                            {"name": "unprobed.example", "relay": "never", "when_primary_up": "defer"},
                            {"name": "always.example", "relay": "primary", "when_primary_up": "accept"}])
    mrod.start()
    wait_for_port(policy_port)
    postfix = postfix_factory(mrod.config, settings={**SLOW_RETRIES, "smtpd_authorized_xclient_hosts": "127.0.0.1"})
    cfg = mrod.config
    try:
        # Health unknown (never probed on this node): accepted.
        assert reply_of(postfix, "a@backup.example")[0] == 250
        # The primary up, as this node's monitor sees it: 4xx, in full.
        assert {(t.relay, t.after) for t in health_round(cfg)} >= {("primary", "up")}
        expected = DEFERRED[0], DEFERRED[1].format(rcpt="b@backup.example", domain="backup.example")
        assert until(postfix, "b@backup.example", expected) == expected
        # ...except postmaster@, an exempt client, a domain that says accept.
        assert reply_of(postfix, "postmaster@backup.example")[0] == 250
        assert rcpt_as(postfix.port, "192.0.2.25", "c@backup.example") == 250
        assert rcpt_as(postfix.port, "198.51.100.25", "c@backup.example") == 450     # not exempt
        assert reply_of(postfix, "d@always.example")[0] == 250
        # A relay never probed (no state): accepted, whatever the mode.
        assert reply_of(postfix, "e@unprobed.example")[0] == 250
        # The primary down: accepted again.
        primary.stop()
        assert [(t.relay, t.after) for t in health_round(cfg) if t.relay == "primary"] == [("primary", "down")]
        assert until(postfix, "f@backup.example", (250, "2.1.5 Ok"))[0] == 250
    finally:
        primary.stop()
