"""DANE against real DNSSEC: a named signs dane.test inline (``dnssec-policy default``), a second
named validates it (recursion, ``dnssec-validation yes``, the zone's key as a static trust
anchor, the zone forwarded to the first) and is the resolver mrod asks ([mta_sts] resolver,
[checks] resolver). The refresh job answers ``dane`` when every MX host but this one has a
validated TLSA record; the DNS checks say when this host's MX name has none."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dns.flags
import dns.message
import dns.query
import pytest

from mrod.answers import routing
from mrod.answers.routestore import RouteStore
from mrod.entities import domains
from mrod.infra import db
from mrod.mtasts.refresh import Refresher
from mrod.operations import checks
from tests.conftest import make_config
from tests.data import ACTOR
from tests.harness import free_port, require_tool
from tests.harness.named import Named, start, zone_text
from tests.harness.testca import Leaf, TestCA
from tests.harness.smtpsink import SmtpSink
from tests.mtasts.conftest import Forwarder, free_loopback_53
from tests.postfix.conftest import payload

pytestmark = pytest.mark.bind
US = "mx2.dane.test"
SIGNED = 'zone "{0}" {{ type primary; file "{0}.db"; dnssec-policy default; inline-signing yes; }};'


def _signed_zone(directory: Path, tlsa: str) -> Named:
    """named serving dane.test signed (and an unsigned zone to see it answer)."""
    directory.mkdir(parents=True)
    records = (f"@ IN MX 10 mail\n@ IN MX 20 mx2\nmail IN A 127.0.0.2\nmx2 IN A 127.0.0.1\n"
               # A wildcard over the port: Postfix asks _<port>._tcp.<host> for the port it connects
               # to (the sink's, by smtp_tcp_port), mrod _25._tcp.<host>.
               f"*._tcp.mail IN TLSA 3 1 1 {tlsa}\n")
    (directory / "dane.test.db").write_text(zone_text("dane.test", records))
    (directory / "tlsless.test.db").write_text(zone_text("tlsless.test", "@ IN MX 10 mail\nmail IN A 127.0.0.2\n"))
    return start(directory, {"ready.test": zone_text("ready.test")},
                 extra=SIGNED.format("dane.test") + "\n" + SIGNED.format("tlsless.test"))


def _key(server: Named, zone: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = server.answers(zone, "DNSKEY")
        keys = [rr for rrset in (reply.answer if reply else []) for rr in rrset if rr.flags == 257]
        if keys:
            k = keys[0]
            return f'{zone}. static-key {k.flags} {k.protocol} {int(k.algorithm)} "{base64.b64encode(k.key).decode()}";'
        time.sleep(0.1)
    raise AssertionError(f"{zone} was not signed: {server.log_tail()}")


@dataclass
class Dnssec:
    port: int          # the validating resolver's
    ca: TestCA
    leaf: Leaf         # mail.dane.test's certificate: its key is in the TLSA record


@pytest.fixture
def validating(tmp_path: Path) -> Iterator[Dnssec]:
    program = require_tool("named", "bind9")
    ca = TestCA(tmp_path / "ca")
    leaf = ca.issue("mail", ["mail.dane.test"])
    signer = _signed_zone(tmp_path / "signer", leaf.spki_sha256())
    resolver_dir = tmp_path / "resolver"
    resolver_dir.mkdir()
    port = free_port()
    d = str(resolver_dir)
    anchors = "\n".join(_key(signer, z) for z in ("dane.test", "tlsless.test"))
    forwards = "\n".join(f'zone "{z}" {{ type forward; forward only; forwarders {{ 127.0.0.1 port {signer.port}; }}; }};'
                         for z in ("dane.test", "tlsless.test"))
    (resolver_dir / "named.conf").write_text(
        f'options {{ directory "{d}"; pid-file "{d}/named.pid"; lock-file "{d}/named.lock";'
        f' session-keyfile "{d}/session.key"; managed-keys-directory "{d}";'
        f" listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; notify no;"
        " recursion yes; allow-recursion { 127.0.0.1; }; dnssec-validation yes; };\n"
        f"controls {{ }};\ntrust-anchors {{\n{anchors}\n}};\n{forwards}\n")
    log = open(resolver_dir / "named.log", "wb")
    process = subprocess.Popen([program, "-g", "-4", "-n", "1", "-c", str(resolver_dir / "named.conf")],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            query = dns.message.make_query("dane.test", "MX", want_dnssec=True)
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
                if reply.flags & dns.flags.AD:
                    break
            except (dns.exception.Timeout, OSError):
                pass
            assert process.poll() is None and time.monotonic() < deadline, (
                (resolver_dir / "named.log").read_text()[-3000:])
            time.sleep(0.1)
        yield Dnssec(port, ca, leaf)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        signer.stop()


async def test_dane_is_answered_for_validated_tlsa_and_missing_tlsa_is_a_finding(tmp_path: Path,
                                                                                 validating: Dnssec) -> None:
    port = validating.port
    cfg = make_config(tmp_path, checks={"mx_names": [US], "local_addresses": ["127.0.0.1"], "resolver": "127.0.0.1",
                                        "resolver_port": port, "timeout": 3.0})
    async with db.opened(cfg.database, create=True) as conn:
        await domains.add(conn, ACTOR, "dane.test", mx=True)
        await domains.add(conn, ACTOR, "tlsless.test", mx=True, tls="encrypt")
        found = {c.domain: c for c in await Refresher(cfg).run(conn)}
        assert (found["dane.test"].dane, found["dane.test"].answer) == (True, "dane")
        assert (found["tlsless.test"].dane, found["tlsless.test"].answer) == (False, None)
        results = {r.domain: r for r in await checks.run(cfg, conn)}
    # This host (mx2.dane.test) has no TLSA record in a signed zone.
    assert {f.code: f.level for f in results["dane.test"].findings} == {"tlsa-missing": "warning"}
    assert "_25._tcp.mx2.dane.test." in results["dane.test"].findings[0].fix
    store = RouteStore.open(cfg.database.path)
    try:
        assert routing.answer(store, "tls_policy", "dane.test").value == "dane"
        assert routing.answer(store, "tls_policy", "tlsless.test").value == "encrypt"
    finally:
        store.close()


@pytest.mark.postfix
def test_postfix_delivers_only_to_the_key_the_tlsa_record_names(validating: Dnssec, mrod_factory,
                                                                 postfix_factory) -> None:
    """Real Postfix, `smtp_dns_support_level = dnssec` (mrod's main.cf lines), its chrooted
    resolver forwarded to the validating named: told `dane` for dane.test, it defers a primary
    whose key is not the TLSA record's and delivers to the one whose key is. (glibc ≥ 2.31
    clears the AD bit unless resolv.conf says `options trust-ad`: without it Postfix sees no
    DNSSEC and falls back to opportunistic TLS — delivered to the wrong key.)"""
    other = validating.ca.issue("other-key", ["mail.dane.test"])     # the right name, another key
    primary = SmtpSink("primary", host="127.0.0.2", tls_context=validating.ca.server_context(other)).start()
    address = free_loopback_53()
    forwarder = Forwarder(address, validating.port)
    try:
        mrod = mrod_factory(start=False)
        mrod.add_section("checks", resolver="127.0.0.1", resolver_port=validating.port, mx_names=[US])
        mrod.start()
        mrod.cli("domain", "add", "dane.test", "--mx")
        mrod.cli("mta-sts", "refresh")
        postfix = postfix_factory(mrod.config, start=False, settings={
            "smtp_tcp_port": str(primary.port), "smtp_tls_loglevel": "1",
            "queue_run_delay": "300s", "minimal_backoff_time": "300s", "maximal_backoff_time": "600s"})
        assert postfix.settings["smtp_dns_support_level"] == "dnssec"
        (postfix.directory / "spool" / "etc").mkdir(parents=True)
        (postfix.directory / "spool" / "etc" / "resolv.conf").write_text(f"nameserver {address}\noptions trust-ad\n")
        postfix.start()
        assert postfix.postmap_q("dane.test", mrod.socketmap_table("tls_policy"))[:2] == (0, "dane")

        mark = postfix.log_mark()
        reply = postfix.smtp(["joe@dane.test"], payload("dane-1", "joe@dane.test"))
        # The primary's key is refused; then the backup MX (this host's name here) is tried and
        # refuses the connection: deferred either way, nothing delivered.
        postfix.wait_for_log(rf"{reply.queue_id}: .*status=deferred", since=mark, timeout=30)
        assert re.search(r"Untrusted TLS connection established to mail\.dane\.test\[127\.0\.0\.2\]"
                         rf"(.|\n)*{reply.queue_id}: Server certificate not verified", postfix.log_text()[mark:])
        assert primary.messages == []
        postfix.wait_for_queue(lambda q: [e["queue_name"] for e in q] == ["deferred"])

        primary.stop()
        primary.tls_context = validating.ca.server_context(validating.leaf)
        primary.start()
        postfix.flush()
        [received] = primary.wait_for(1, timeout=30)
        assert received.rcpt_tos == ("joe@dane.test",)
        postfix.wait_for_log(rf"{reply.queue_id}: .*status=sent", since=mark)
        assert "Verified TLS connection established" in postfix.log_text()[mark:]
    finally:
        forwarder.stop()
        primary.stop()
