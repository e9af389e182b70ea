"""The policy listener over real sockets, with real SMTP callouts to a primary on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mrod.lookupd.daemon import Lookupd
from mrod.infra import db
from mrod.entities import domains
from tests.conftest import make_config
from tests.data import ACTOR, seed_file


@pytest.fixture
async def daemon(tmp_path: Path, primary):
    server, _ = primary
    cfg = make_config(tmp_path, lookupd={"socketmap": "", "policy": "127.0.0.1:0"},
                      policy={"callout_timeout": 3.0})
    await seed_file(cfg.database.path, relays=[dict(name="primary", host="127.0.0.1", port=server.port)],
                    domains=[dict(name="verify.example", relay="primary", recipients="verify", verify_when_down="defer"),
                             dict(name="paused.example", relay="primary", paused=True, pause_reason="maintenance")])
    d = Lookupd(cfg)
    await d.start()
    yield d
    await d.stop()


async def ask(reader, writer, recipient: str, **extra: str) -> str:
    attrs = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
             "client_address": "192.0.2.9", "sender": "x@sender.example", "recipient": recipient, **extra}
    writer.write("".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n")
    reply = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
    assert reply.startswith(b"action=")
    return reply[len(b"action="):-2].decode()


async def test_decisions_on_one_persistent_connection(daemon: Lookupd, primary) -> None:
    _, handler = primary
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    assert await ask(r, w, "a@paused.example") == \
        "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: maintenance"
    assert await ask(r, w, "a@unrelated.example") == "DUNNO"
    assert await ask(r, w, "Joe+news@verify.example") == "DUNNO"          # the primary accepts joe
    assert await ask(r, w, "nobody@verify.example") == \
        "550 5.1.1 User unknown at the primary mail server"
    assert handler.asked == ["joe@verify.example", "nobody@verify.example"]
    with sqlite3.connect(daemon.config.database.path) as raw:
        cached = dict(raw.execute("SELECT address, valid FROM verify_cache"))
    assert cached == {"joe@verify.example": 1, "nobody@verify.example": 0}
    # cached answers do not ask the primary again
    assert await ask(r, w, "joe@verify.example") == "DUNNO"
    assert len(handler.asked) == 2
    w.close()


async def test_primary_down_known_recipients_pass_unknown_follow_the_domain_choice(daemon: Lookupd, primary) -> None:
    server, handler = primary
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    assert await ask(r, w, "joe@verify.example") == "DUNNO"     # learnt while the primary is up
    server.stop()
    assert await ask(r, w, "joe@verify.example") == "DUNNO"     # still known good
    assert (await ask(r, w, "someone@verify.example")).startswith(
        "DEFER_IF_PERMIT Cannot verify this recipient while")
    async with db.opened(daemon.config.database.path) as c:
        await domains.update(c, ACTOR, "verify.example", verify_when_down="accept")
    assert await ask(r, w, "someone-else@verify.example") == "DUNNO"
    w.close()


async def test_garbage_closes_without_a_reply_and_others_are_served(daemon: Lookupd) -> None:
    port = daemon.listener("policy").port
    r1, w1 = await asyncio.open_connection("127.0.0.1", port)
    r2, w2 = await asyncio.open_connection("127.0.0.1", port)
    w1.write(b"this is not a policy request\n\n")
    assert await asyncio.wait_for(r1.read(), 5) == b""
    assert await ask(r2, w2, "a@paused.example") == \
        "DEFER_IF_PERMIT Mail for paused.example is paused on this backup MX: maintenance"
    w1.close()
    w2.close()


async def test_internal_fault_closes_without_a_reply(daemon: Lookupd, tmp_path: Path) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", daemon.listener("policy").port)
    assert await ask(r, w, "a@unrelated.example") == "DUNNO"
    (tmp_path / "broken").write_bytes(b"garbage" * 1000)
    (tmp_path / "broken").replace(daemon.config.database.path)
    w.write(b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@verify.example\n\n")
    assert await asyncio.wait_for(r.read(), 5) == b""    # no REJECT, no DUNNO: Postfix uses its default 4xx
    w.close()
