"""A domain fed by a recipient source, through a real Postfix (issue 20.3, no backscatter):
before its first good sync it keeps accept_all; after it, an unknown recipient gets 550 at RCPT
(relay_recipient_maps NOTFOUND) and a listed one 250; the next sync's additions are answered at
the next lookup (journaled); a held result changes nothing Postfix is told.

The source is an HTTP export on loopback (a thread of this process); one Postfix and one
lookupd serve the module, every dialogue stops after RCPT."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.postfix

ANSWER: dict[str, Any] = {"body": []}


class _Export(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWER["body"]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def export() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Export)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/users.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def setup(module_mrod_factory, module_postfix_factory, export):
    mrod = module_mrod_factory()
    mrod.cli("relay", "add", "p1", "--host", "127.0.0.1", "--port", "2")   # never delivered to
    mrod.cli("domain", "add", "synced.example", "--relay", "p1")
    mrod.cli("recipient-source", "add", "hr", "--url", export, "--format", "json")
    mrod.cli("relay", "set", "p1", "--recipient-source", "hr")
    return mrod, module_postfix_factory(mrod.config)


def test_synced_domain_refuses_unknown_recipients_at_rcpt(setup) -> None:
    mrod, postfix = setup
    assert postfix.rcpt_reply("nobody@synced.example").code == 250      # no good sync yet: accept_all

    ANSWER["body"] = [{"mail": f"user{i}@synced.example"} for i in range(10)]
    mrod.cli("recipient-source", "sync", "hr")
    assert postfix.rcpt_reply("user1@synced.example").code == 250
    assert postfix.rcpt_reply("User1+tag@Synced.Example").code == 250
    reply = postfix.rcpt_reply("nobody@synced.example")
    assert reply.code == 550 and "User unknown in relay recipient table" in reply.text

    ANSWER["body"] = ANSWER["body"] + [{"mail": "newcomer@synced.example"}]
    mrod.cli("recipient-source", "sync")
    assert postfix.rcpt_reply("newcomer@synced.example").code == 250   # the next lookup sees it

    ANSWER["body"] = ANSWER["body"][5:]          # removes 5 of 11: held, nothing changes
    held = mrod.cli("recipient-source", "sync", "hr", check=False)
    assert held.returncode == 1 and "HELD" in held.stdout
    assert postfix.rcpt_reply("user1@synced.example").code == 250
    listed = json.loads(mrod.cli("recipient-source", "list", "--json").stdout)
    assert listed[0]["state"] == "held" and listed[0]["failing_since"]

    mrod.cli("recipient-source", "accept", "hr")
    assert postfix.rcpt_reply("user1@synced.example").code == 550
    assert postfix.rcpt_reply("user9@synced.example").code == 250
