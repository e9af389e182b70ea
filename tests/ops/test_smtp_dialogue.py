"""One SMTP dialogue, three verdicts: the panel's connection test (relaytest), the health probe
and the recipient callout open the same dialogue against the same real loopback servers —
aiosmtpd plain, with STARTTLS and with implicit TLS (a self-signed certificate made by openssl),
one whose TLS handshake cannot succeed, a closed port — and the panel's "up" (not FAIL) is
always the health monitor's. Health completes STARTTLS where the relay requires TLS."""

from __future__ import annotations

import asyncio
import ssl
from typing import Callable

import pytest

from mrod.answers import callout
from mrod.answers.policy import Callout
from mrod.operations import health, relaytest
from tests.harness import free_port


def _callout(port: int, protocol: str, tls: str) -> Callout:
    return Callout("user@example.com", "user@example.com", "example.com", "127.0.0.1", port, protocol, tls, "accept")


async def _three(port: int, protocol: str, tls: str) -> tuple[relaytest.ProbeResult, health.Probe, bool | None]:
    panel = await relaytest.probe("127.0.0.1", port, protocol, 5, tls=tls)
    probe = await health.probe("127.0.0.1", port, protocol=protocol, tls=tls, timeout=5)
    verified = await callout.verify(_callout(port, protocol, tls), helo="mrod.test", timeout=5)
    assert panel.up == probe.ok, (panel, probe)        # the panel and the monitor agree on "up"
    return panel, probe, verified


@pytest.fixture
def broken_tls() -> ssl.SSLContext:
    """A server context without a certificate: STARTTLS is offered, no handshake can succeed."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


async def test_plain_server_without_starttls(smtp_sink) -> None:
    panel, probe, verified = await _three(smtp_sink.port, "smtp", "may")
    assert (panel.verdict, probe.ok, verified) == (relaytest.OK, True, True)
    assert probe.starttls is False and probe.latency_ms is not None and panel.latency_ms is not None
    # The relay requires TLS: down for all three (Postfix would defer).
    panel, probe, verified = await _three(smtp_sink.port, "smtp", "encrypt")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    assert "offers no STARTTLS" in panel.summary and "offers no STARTTLS" in probe.detail


async def test_starttls_is_completed_at_the_relays_level(smtp_server: Callable[..., int], tls_context) -> None:
    port = smtp_server(tls_context=tls_context)
    panel, probe, verified = await _three(port, "smtp", "encrypt")
    assert (panel.verdict, panel.tls_ok, probe.ok, probe.starttls, verified) == (relaytest.OK, True, True, True, True)
    # 'verify' checks the certificate: a self-signed one fails the handshake, so the relay is down.
    panel, probe, verified = await _three(port, "smtp", "verify")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    assert "TLS handshake failed" in probe.detail and "CERTIFICATE_VERIFY_FAILED" in probe.detail
    assert "TLS handshake failed" in panel.summary


async def test_a_failing_handshake_is_down_when_required_and_a_warning_with_may(
        smtp_server: Callable[..., int], broken_tls: ssl.SSLContext) -> None:
    port = smtp_server(tls_context=broken_tls)
    panel, probe, verified = await _three(port, "smtp", "encrypt")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    assert "TLS handshake failed" in probe.detail
    # With 'may' Postfix falls back to plain text: up, the panel warns, the callout cannot go on.
    panel, probe, verified = await _three(port, "smtp", "may")
    assert (panel.verdict, panel.tls_ok, probe.ok, probe.starttls, verified) == (
        relaytest.WARNING, False, True, True, None)


async def test_implicit_tls(smtp_server: Callable[..., int], tls_context) -> None:
    port = smtp_server(ssl_context=tls_context)
    panel, probe, verified = await _three(port, "smtps", "encrypt")
    assert (panel.verdict, panel.tls_ok, probe.ok, verified) == (relaytest.OK, True, True, True)
    panel, probe, verified = await _three(port, "smtps", "secure")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    # Plain SMTP to an implicit-TLS port is no SMTP server at all.
    panel, probe, verified = await _three(port, "smtp", "may")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)


async def test_nothing_listens() -> None:
    panel, probe, verified = await _three(free_port(), "smtp", "may")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    assert "connection refused" in panel.summary and "connection refused" in probe.detail


async def test_a_server_that_talks_nonsense_is_down_never_an_exception() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220-" + b"x" * 20000)        # one line far beyond any SMTP reply
        await writer.drain()
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    async with server:
        panel, probe, verified = await _three(server.sockets[0].getsockname()[1], "smtp", "may")
    assert (panel.verdict, probe.ok, verified) == (relaytest.FAIL, False, None)
    assert "longer than" in probe.detail
