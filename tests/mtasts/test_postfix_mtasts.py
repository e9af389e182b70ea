"""Real Postfix honours mrod's MTA-STS answer for a domain routed by its MX records.

How Postfix resolves the test domain's MX through the test named: Postfix's smtp client runs
chrooted in its queue directory (Debian's master.cf), and its resolver reads
``<queue_directory>/etc/resolv.conf`` — which names port 53 of a loopback address of its own
(resolv.conf has no port), where a small UDP forwarder passes each query to the test named (named
only listens on addresses configured on an interface; Linux lets a socket bind any 127/8
address). The MX host's address is 127.0.0.2 (not this
Postfix's own 127.0.0.1: Postfix would see a mail loop), and ``smtp_tcp_port`` sends the
delivery to the primary's test port instead of 25. So the whole path is real: MX lookup,
``smtp_tls_policy_maps`` asked with the next-hop domain, the certificate checked against the
policy's mx patterns.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.harness.named import Named, zone_text
from tests.harness.smtpsink import SmtpSink
from tests.harness.testca import TestCA
from tests.mtasts.conftest import Forwarder, PolicyHost, free_loopback_53, policy_text
from tests.postfix.conftest import payload

pytestmark = [pytest.mark.postfix, pytest.mark.bind]
POLICY_DOMAINS = ["pf.test"]
ZONE = ('@ IN MX 10 mail\nmail IN A 127.0.0.2\nmta-sts IN A 127.0.0.1\n_mta-sts IN TXT "v=STSv1; id=1"\n')


@pytest.fixture
def dns53(start_named) -> Iterator[tuple[Named, str]]:
    server = start_named({"pf.test": zone_text("pf.test", ZONE)})
    address = free_loopback_53()
    forwarder = Forwarder(address, server.port)
    try:
        yield server, address
    finally:
        forwarder.stop()


def test_a_primary_whose_certificate_misses_the_policy_is_deferred_then_a_matching_one_receives(
        dns53, policy_host: PolicyHost, test_ca: TestCA, mrod_factory, postfix_factory) -> None:
    named, address = dns53
    policy_host.policies["mta-sts.pf.test"] = (200, policy_text("enforce", "mail.pf.test"))
    wrong = test_ca.issue("wrong", ["mail.elsewhere.test"])
    right = test_ca.issue("right", ["mail.pf.test"])
    primary = SmtpSink("primary", host="127.0.0.2", tls_context=test_ca.server_context(wrong)).start()
    try:
        mrod = mrod_factory(start=False)
        mrod.add_section("checks", resolver="127.0.0.1", resolver_port=named.port)
        mrod.add_section("mta_sts", ca_file=str(test_ca.cert), https_port=policy_host.port)
        mrod.start()
        mrod.cli("domain", "add", "pf.test", "--mx")
        mrod.cli("mta-sts", "refresh")
        assert "secure match=mail.pf.test servername=hostname" in mrod.cli("mta-sts", "list").stdout

        postfix = postfix_factory(mrod.config, start=False, settings={
            "smtp_tcp_port": str(primary.port), "smtp_tls_CAfile": str(test_ca.cert),
            "queue_run_delay": "300s", "minimal_backoff_time": "300s", "maximal_backoff_time": "600s"})
        (postfix.directory / "spool" / "etc").mkdir(parents=True)
        (postfix.directory / "spool" / "etc" / "resolv.conf").write_text(f"nameserver {address}\n")
        postfix.start()
        rc, value, err = postfix.postmap_q("pf.test", mrod.socketmap_table("tls_policy"))
        assert (rc, value) == (0, "secure match=mail.pf.test servername=hostname"), err

        mark = postfix.log_mark()
        reply = postfix.smtp(["joe@pf.test"], payload("sts-1", "joe@pf.test"))
        assert reply.code == 250
        postfix.wait_for_log(rf"{reply.queue_id}: .*relay=mail\.pf\.test\[127\.0\.0\.2\].*status=deferred"
                             r".*(certificate|verification)", since=mark, timeout=30)
        assert primary.messages == []
        # In the deferred queue before the flush (else the flush may scan before qmgr moved it).
        postfix.wait_for_queue(lambda q: [e["queue_name"] for e in q] == ["deferred"])

        primary.stop()
        primary.tls_context = test_ca.server_context(right)
        primary.start()
        postfix.flush()
        [received] = primary.wait_for(1, timeout=30)
        assert received.rcpt_tos == ("joe@pf.test",)
        postfix.wait_for_log(rf"{reply.queue_id}: .*status=sent", since=mark)
    finally:
        primary.stop()
