"""postmaster@ of every relayed domain is accepted by real Postfix (RFC 5321 §4.5.1) — for a
``listed`` domain that does not list it, and for a ``verify`` domain without asking the
primary — unless ``[lookupd] accept_postmaster = false``; ``mrod domain show`` (what Postfix
is told) says so."""

from __future__ import annotations

import json

import pytest

from tests.harness import free_port, wait_for_port
from tests.harness.primary import KnownRecipients, Primary
from tests.postfix.conftest import seed
from tests.postfix.test_rcpt import UNKNOWN_USER

pytestmark = pytest.mark.postfix

DOMAINS = [
    {"name": "listed.example", "relay": "p1", "recipients": "listed"},
    {"name": "verify.example", "relay": "p1", "recipients": "verify"},
    {"name": "open.example", "relay": "p1"},
]


@pytest.fixture
def primary():
    server = Primary(KnownRecipients(set()))      # refuses every recipient
    server.start()
    yield server
    server.stop()


def start(mrod_factory, postfix_factory, primary, **lookupd):
    policy_port = free_port()
    mrod = mrod_factory(start=False, policy=f"127.0.0.1:{policy_port}", **lookupd)
    seed(mrod.db_path, relay_list=[{"name": "p1", "host": "127.0.0.1", "port": primary.port}],
         domain_list=DOMAINS, recipient_list=["joe@listed.example"])
    mrod.start()
    wait_for_port(policy_port)
    return mrod, postfix_factory(mrod.config)


def test_postmaster_is_accepted_for_every_relayed_domain(mrod_factory, postfix_factory, primary) -> None:
    mrod, postfix = start(mrod_factory, postfix_factory, primary)
    for rcpt in ("postmaster@listed.example", "PostMaster@Listed.Example", "postmaster@verify.example",
                 "postmaster@open.example"):
        assert postfix.rcpt_reply(rcpt).code == 250, rcpt
    assert primary.handler.asked == []                      # verify: postmaster is never asked about
    refused = postfix.rcpt_reply("stranger@listed.example")
    assert refused.code == 550 and UNKNOWN_USER in refused.text
    assert postfix.rcpt_reply("postmaster@elsewhere.example").code == 554   # not relayed: no
    shown = json.loads(mrod.cli("domain", "show", "listed.example", "--json").stdout)
    [rcpts] = [p for p in shown["postfix"] if p["map"] == "relay_recipients"]
    assert rcpts["key"] == "postmaster@listed.example" and rcpts["answer"] == "OK postmaster@listed.example"
    assert "RFC 5321" in rcpts["why"]


def test_accept_postmaster_false_turns_it_off(mrod_factory, postfix_factory, primary) -> None:
    mrod, postfix = start(mrod_factory, postfix_factory, primary, accept_postmaster=False)
    refused = postfix.rcpt_reply("postmaster@listed.example")
    assert refused.code == 550 and UNKNOWN_USER in refused.text
    assert postfix.rcpt_reply("joe@listed.example").code == 250
    # verify: postmaster is asked of the primary like anyone else (which refuses it here).
    assert postfix.rcpt_reply("postmaster@verify.example").code == 550
    assert primary.handler.asked == ["postmaster@verify.example"]
    shown = json.loads(mrod.cli("domain", "show", "listed.example", "--json").stdout)
    [rcpts] = [p for p in shown["postfix"] if p["map"] == "relay_recipients"]
    assert rcpts["answer"] == "NOTFOUND "
