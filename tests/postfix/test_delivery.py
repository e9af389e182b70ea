"""Mail through a real Postfix backup MX, end to end: accepted and queued while the primary is
down, delivered intact when it is back; changes made with the CLI take effect with no reload.

Each test has its own Postfix instance (its own queue) and lookupd; primaries are SMTP sinks.

What makes a change show up (seen with Postfix 3.7.11 here):

* Delivery routes are resolved by qmgr through trivial-rewrite. qmgr's resolve client keeps a
  ONE-entry cache of the last (sender, address) it resolved, for 30 s (resolve_clnt.c). So
  right after ``mrod domain set D --relay OTHER``, one more message from the same sender to
  the very same address as the last one resolved may still take the old route; the next
  message to any other address (or after 30 s, or once qmgr has resolved any other address)
  takes the new one. trivial-rewrite itself asks mrod every time. The test therefore sends
  the next message to another recipient, then shows the first recipient moved as well.
* smtpd keeps a per-process cache of resolve results (relay or not) for the addresses it has
  seen. After ``mrod domain rm D``, a new address of D is refused with 554 5.7.1 Relay access
  denied; an address this smtpd process already resolved is still refused — by the recipient
  check, which is never cached — with 550 5.1.1 User unknown in relay recipient table.
"""

from __future__ import annotations

import pytest

from tests.data import seed_file_sync
from tests.postfix.conftest import payload, without_received

pytestmark = pytest.mark.postfix


# Deferred mail stays put: only an explicit flush delivers it.
SLOW_RETRIES = {"queue_run_delay": "300s", "minimal_backoff_time": "300s", "maximal_backoff_time": "600s"}


def deferred_for(entries: list[dict], reason: str) -> bool:
    """Every message deferred, every recipient with a delay reason containing ``reason``."""
    return bool(entries) and all(
        e["queue_name"] == "deferred" and all(reason in r.get("delay_reason", "\0") for r in e["recipients"])
        for e in entries)


def test_mail_is_queued_while_the_primary_is_down_and_delivered_intact(
        mrod_factory, postfix_factory, smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)           # down
    mrod = mrod_factory()
    mrod.cli("relay", "add", "primary", "--host", "127.0.0.1", "--port", str(primary.port))
    mrod.cli("domain", "add", "example.com", "--relay", "primary")
    mrod.cli("domain", "add", "second.example", "--relay", "primary")
    # Long retry timers: only an explicit flush delivers, so the test shows that flush works.
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    mark = postfix.log_mark()

    message = payload("queued-1", "joe@example.com")
    reply = postfix.smtp(["joe@example.com"], message)
    assert reply.code == 250 and reply.queue_id
    second = postfix.smtp(["ann@second.example"], payload("queued-2", "ann@second.example"))
    queued = postfix.wait_for_queue(lambda q: len(q) == 2 and deferred_for(q, "Connection refused"))
    assert sorted((e["queue_id"], e["recipients"][0]["address"]) for e in queued) == sorted(
        [(reply.queue_id, "joe@example.com"), (second.queue_id, "ann@second.example")])
    assert primary.messages == []

    primary.start()
    # postqueue -s asks the flush service, which checks fast_flush_domains (= relay_domains,
    # i.e. lookupd) before it sends the site's deferred mail.
    assert postfix.flush_site("example.com") == (0, "")
    [received] = primary.wait_for(1)
    assert received.mail_from == "sender@client.test"
    assert received.rcpt_tos == ("joe@example.com",)
    assert f"ESMTP id {reply.queue_id}".encode() in received.content.split(b"\r\n\r\n")[0]
    assert without_received(received.content) == message
    postfix.wait_for_log(rf"{reply.queue_id}: to=<joe@example.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                         rf"{primary.port}, .*status=sent", since=mark)
    assert [e["queue_id"] for e in postfix.queue()] == [second.queue_id]

    code, err = postfix.flush_site("not-relayed.example")
    assert code == 69 and "Flush service is not configured for destination" in err, (code, err)
    postfix.flush()
    assert primary.wait_for(2)[1].rcpt_tos == ("ann@second.example",)
    postfix.wait_for_queue(lambda q: q == [])


def test_relay_change_moves_the_next_message_without_reload(
        mrod_factory, postfix_factory, smtp_sink, smtp_sink2) -> None:
    mrod = mrod_factory()
    mrod.cli("relay", "add", "old", "--host", "127.0.0.1", "--port", str(smtp_sink.port))
    mrod.cli("relay", "add", "new", "--host", "127.0.0.1", "--port", str(smtp_sink2.port))
    mrod.cli("domain", "add", "example.com", "--relay", "old")
    postfix = postfix_factory(mrod.config)

    postfix.smtp(["joe@example.com"], payload("before", "joe@example.com"))
    [before] = smtp_sink.wait_for(1)
    assert before.rcpt_tos == ("joe@example.com",)

    mrod.cli("domain", "set", "example.com", "--relay", "new")
    postfix.smtp(["ann@example.com"], payload("after", "ann@example.com"))
    [after] = smtp_sink2.wait_for(1)
    assert after.rcpt_tos == ("ann@example.com",)
    postfix.smtp(["joe@example.com"], payload("after-2", "joe@example.com"))
    _, again = smtp_sink2.wait_for(2)
    assert again.rcpt_tos == ("joe@example.com",)
    assert b"after-2" in again.content
    assert len(smtp_sink.messages) == 1          # nothing more went to the old primary
    assert "reload" not in postfix.log_text()


def test_removed_domain_is_refused(mrod_factory, postfix_factory, smtp_sink) -> None:
    mrod = mrod_factory()
    mrod.cli("relay", "add", "p1", "--host", "127.0.0.1", "--port", str(smtp_sink.port))
    mrod.cli("domain", "add", "gone.example", "--relay", "p1")
    mrod.cli("domain", "add", "kept.example", "--relay", "p1")
    postfix = postfix_factory(mrod.config)
    assert postfix.rcpt_reply("joe@gone.example").code == 250

    mrod.cli("domain", "rm", "gone.example")
    new = postfix.rcpt_reply("ann@gone.example")
    assert (new.code, new.text) == (554, "5.7.1 <ann@gone.example>: Relay access denied")
    seen = postfix.rcpt_reply("joe@gone.example")
    assert seen.code // 100 == 5, seen      # refused for good either way (see the module docstring)
    assert seen.text.endswith(("Relay access denied", "User unknown in relay recipient table")), seen
    assert postfix.rcpt_reply("joe@kept.example").code == 250


def test_tls_requirements_reach_the_smtp_client(mrod_factory, postfix_factory, smtp_sink, smtp_sink2) -> None:
    """A relay that requires STARTTLS (tls_policy) or takes implicit TLS (mrod-smtps transport)
    is never sent mail in the clear: the sinks offer no TLS, so mail waits in the queue."""
    mrod = mrod_factory()
    seed_file_sync(mrod.db_path,
         relays=[dict(name="starttls", host="127.0.0.1", port=smtp_sink.port, tls="encrypt"),
                     dict(name="implicit", host="127.0.0.1", port=smtp_sink2.port, protocol="smtps")],
         domains=[dict(name="starttls.example", relay="starttls"),
                      dict(name="implicit.example", relay="implicit")])
    # One delivery attempt each (no retry while the test looks at the queue).
    postfix = postfix_factory(mrod.config, settings=SLOW_RETRIES)
    first = postfix.smtp(["joe@starttls.example"], payload("tls-1", "joe@starttls.example"))
    second = postfix.smtp(["joe@implicit.example"], payload("tls-2", "joe@implicit.example"))

    entries = postfix.wait_for_queue(lambda q: len(q) == 2 and deferred_for(q, ""))
    reasons = {e["queue_id"]: e["recipients"][0]["delay_reason"] for e in entries}
    assert reasons[first.queue_id] == "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"
    assert reasons[second.queue_id].startswith("Cannot start TLS"), reasons[second.queue_id]
    assert smtp_sink.messages == [] and smtp_sink2.messages == []


def test_postfix_on_tcp_tables_only(mrod_factory, postfix_factory, smtp_sink) -> None:
    """With no socketmap configured, the generated main.cf names lookupd's tcp tables; Postfix
    relays, routes and checks recipients through them."""
    mrod = mrod_factory(socketmap=False)
    mrod.cli("relay", "add", "p1", "--host", "127.0.0.1", "--port", str(smtp_sink.port))
    mrod.cli("domain", "add", "listed.example", "--relay", "p1", "--recipients", "listed")
    mrod.cli("recipient", "add", '"john doe"@listed.example')
    postfix = postfix_factory(mrod.config)
    assert postfix.postconf("relay_recipient_maps") == mrod.tcp_table("relay_recipients")

    assert postfix.rcpt_reply("joe@listed.example").code == 550
    assert postfix.rcpt_reply("joe@other.example").code == 554
    message = payload("tcp-1", '"john doe"@listed.example')
    postfix.smtp(['"john doe+x"@listed.example'], message)
    [received] = smtp_sink.wait_for(1)
    assert received.rcpt_tos == ('"john doe+x"@listed.example',)
    assert without_received(received.content) == message
