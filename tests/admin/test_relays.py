"""Relays through the panel (add, edit, delete refused while in use or with reassignment,
relay_own) and the "test connection" probe against real SMTP servers on loopback: aiosmtpd
plain, with STARTTLS and with implicit TLS (a certificate made by openssl), a server that
refuses with 554, one that never speaks, and a closed port."""

from __future__ import annotations

import asyncio
import re


import pytest

from mrod.entities import domains, relays
from mrod.operations import relaytest
from tests.data import SYSTEM
from tests.harness import free_port



async def _raw_server(greeting: bytes | None) -> tuple[asyncio.Server, int]:
    """A TCP server that sends ``greeting`` (or nothing at all) and keeps the connection open."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if greeting is not None:
            writer.write(greeting)
            await writer.drain()
        try:
            await reader.read(1000)
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_probe_plain_server_without_starttls(smtp_sink) -> None:
    result = await relaytest.probe("127.0.0.1", smtp_sink.port, "smtp", 5)
    assert result.verdict == relaytest.OK and result.starttls is False
    assert result.banner is not None and result.banner.startswith("220 ")
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert "no STARTTLS" in result.summary
    required = await relaytest.probe("127.0.0.1", smtp_sink.port, "smtp", 5, tls="encrypt")
    assert required.verdict == relaytest.FAIL and "requires TLS" in required.summary


async def test_probe_starttls_and_implicit_tls(smtp_server, tls_context) -> None:
    port = smtp_server(tls_context=tls_context)
    result = await relaytest.probe("127.0.0.1", port, "smtp", 5, tls="encrypt")
    assert (result.verdict, result.starttls, result.tls_ok) == (relaytest.OK, True, True)
    assert "STARTTLS works" in result.summary
    port = smtp_server(ssl_context=tls_context)
    result = await relaytest.probe("127.0.0.1", port, "smtps", 5)
    assert (result.verdict, result.tls_ok) == (relaytest.OK, True) and "implicit TLS" in result.summary
    # Speaking plain SMTP to an implicit-TLS port does not work, and says so.
    result = await relaytest.probe("127.0.0.1", port, "smtp", 2)
    assert result.verdict == relaytest.FAIL


async def test_probe_failures_give_a_clear_verdict() -> None:
    refused = await relaytest.probe("127.0.0.1", free_port(), "smtp", 5)
    assert refused.verdict == relaytest.FAIL and "refused" in refused.summary.lower()
    server, port = await _raw_server(b"554 5.3.2 go away\r\n")
    async with server:
        result = await relaytest.probe("127.0.0.1", port, "smtp", 5)
    assert result.verdict == relaytest.FAIL and "554" in result.summary
    assert result.banner is not None and result.banner.startswith("554")
    server, port = await _raw_server(None)
    async with server:
        result = await relaytest.probe("127.0.0.1", port, "smtp", 0.5)
    assert result.verdict == relaytest.FAIL and "no answer within 0.5 s" in result.summary
    server, port = await _raw_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    async with server:
        result = await relaytest.probe("127.0.0.1", port, "smtp", 5)
    assert result.verdict == relaytest.FAIL and "not an SMTP reply" in result.summary


@pytest.mark.both_engines
async def test_relay_pages_add_edit_test_and_delete(admin_panel, app_conn, smtp_sink) -> None:
    status, _, _ = await admin_panel.post("/relays/new", {"name": "primary", "host": "127.0.0.1",
                                                          "port": str(smtp_sink.port), "tls": "may"})
    assert status == 303
    relay = await relays.get(app_conn, "primary")
    status, page, _ = await admin_panel.post("/relays/new", {"name": "primary", "host": "mx.example.net"})
    assert status == 400
    assert "already exists" in page
    status, page, _ = await admin_panel.post("/relays/new", {"name": "r2", "host": "mx.example.net", "port": "0"})
    assert status == 400
    assert 'id="port-error"' in page
    status, page, _ = await admin_panel.post(f"/relays/{relay.id}/test")
    assert status == 200
    assert "OK" in page
    assert "220 " in page
    assert "not offered" in page
    status, _, _ = await admin_panel.post(f"/relays/{relay.id}", {"name": "primary", "host": "127.0.0.1",
                                                                  "port": str(smtp_sink.port), "tls": "encrypt"})
    assert status == 303
    assert (await relays.get(app_conn, relay.id)).tls == "encrypt"
    status, page, _ = await admin_panel.post(f"/relays/{relay.id}/test")
    assert "FAIL" in page
    assert "requires TLS" in page
    # In use: refused, then allowed with reassignment.
    await relays.add(app_conn, SYSTEM, name="other", host="mx2.example.net")
    await domains.add(app_conn, SYSTEM, "a.example", relay="primary")
    status, page, _ = await admin_panel.post(f"/relays/{relay.id}/delete", {"confirm": "yes"})
    assert status == 409
    assert "used by 1 domain" in page
    assert (await relays.get(app_conn, "primary")).domain_count == 1
    status, _, _ = await admin_panel.post(f"/relays/{relay.id}/delete", {"confirm": "yes", "reassign": "other"})
    assert status == 303
    assert (await domains.get(app_conn, "a.example")).relay_name == "other"
    assert [r.name for r in await relays.list_all(app_conn)] == ["other"]


async def test_relay_own_user_sees_only_their_relays(new_panel, make_user, app_conn) -> None:
    me = await make_user("ops", "relay_own")
    await relays.add(app_conn, SYSTEM, name="theirs", host="mx1.example.net")
    await relays.add(app_conn, SYSTEM, name="mine", host="mx2.example.net", owner_id=me.id)
    panel = await new_panel()
    assert (await panel.login("ops")).status == 303
    page = (await panel.get("/relays"))[1]
    assert "mine" in page and "theirs" not in page
    theirs = await relays.get(app_conn, "theirs")
    assert (await panel.get(f"/relays/{theirs.id}"))[0] == 403
    assert (await panel.post(f"/relays/{theirs.id}/delete", {"confirm": "yes"}))[0] == 403
    status, _, _ = await panel.post("/relays/new", {"name": "new", "host": "mx3.example.net", "owner": ""})
    assert status == 303 and (await relays.get(app_conn, "new")).owner_id == me.id
    # Reassigning to a relay that is not theirs is refused.
    mine = await relays.get(app_conn, "mine")
    assert (await panel.post(f"/relays/{mine.id}/delete", {"confirm": "yes", "reassign": "theirs"}))[0] == 403


async def test_port_inputs_carry_their_limits_as_attributes(admin_panel) -> None:
    """The number inputs' min/max reach the browser as attributes, not escaped text."""
    for path in ("/relays/new", "/domains/new"):
        status, page = await admin_panel.get(path)
        assert status == 200, path
        port = re.search(r'<input id="port"[^>]*>', page)
        assert port is not None, path
        assert 'min="1"' in port.group(0) and 'max="65535"' in port.group(0), port.group(0)
        assert "&#34;" not in port.group(0)
