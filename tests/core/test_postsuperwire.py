"""The postsuper helper's line protocol (mrod.operations.postsuperwire), table-driven: what a
request may be, what is refused, the replies both ways."""

from __future__ import annotations

import pytest

from mrod.infra.enums import QueueAction
from mrod.operations import postsuperwire as wire

GOOD = [
    (b"hold\nABCDE\n\n", wire.Request(QueueAction.HOLD, ("ABCDE",))),
    (b"release /etc/postfix-b\n3F1A2B4C5D\n4xYz9QkLmN12345\n\n",
     wire.Request(QueueAction.RELEASE, ("3F1A2B4C5D", "4xYz9QkLmN12345"), "/etc/postfix-b")),
    (b"requeue\nABCDE\nABCDE\nBCDEF\n\n", wire.Request(QueueAction.REQUEUE, ("ABCDE", "BCDEF"))),   # once each
    (b"delete /\n" + b"A" * 40 + b"\n\n", wire.Request(QueueAction.DELETE, ("A" * 40,), "/")),
    (b"expire\nabcde\n\n", wire.Request(QueueAction.EXPIRE, ("abcde",))),
]

BAD = [
    (b"", "empty line"),
    (b"hold\nABCDE\n", "empty line"),                          # no end
    (b"hold\nABCDE\n\nBCDEF\n", "empty line"),                 # something after the end
    (b"\n\n", "unknown action"),
    (b"HOLD\nABCDE\n\n", "unknown action"),
    (b"hold-all\nABCDE\n\n", "unknown action"),
    (b"hold\n\n", "no queue ids"),
    (b"hold\nABCD\n\n", "not a Postfix queue id"),             # too short
    (b"hold\n" + b"A" * 41 + b"\n\n", "not a Postfix queue id"),
    (b"hold\nABC-DE\n\n", "not a Postfix queue id"),
    (b"hold\nABCDE \n\n", "not a Postfix queue id"),
    (b"hold\n-ABCDE\n\n", "not a Postfix queue id"),           # never an option to postsuper
    (b"hold\nALL\n\n", "not a Postfix queue id"),
    (b"hold\nABCDE\r\n\n", "not a Postfix queue id"),
    (b"hold\n\xc3\xa9ABCDE\n\n", "not ASCII"),
    (b"hold etc/postfix\nABCDE\n\n", "plain absolute path"),
    (b"hold /etc/../root\nABCDE\n\n", "plain absolute path"),
    (b"hold /etc/postfix/\nABCDE\n\n", "plain absolute path"),
    (b"hold /etc/post fix\nABCDE\n\n", "plain absolute path"),
    (b"hold /etc//postfix\nABCDE\n\n", "plain absolute path"),
    (b"hold\n" + b"ABCDE\n" * (wire.MAX_IDS + 1) + b"\n", "more than"),
    (b"hold\n" + b"A" * wire.MAX_BYTES + b"\n\n", "larger than"),
]


@pytest.mark.parametrize("data, request_", GOOD)
def test_requests_read_and_written(data: bytes, request_: wire.Request) -> None:
    assert wire.complete(data)
    assert wire.decode_request(data) == request_
    assert wire.decode_request(wire.encode_request(request_)) == request_


@pytest.mark.parametrize("data, reason", BAD)
def test_bad_requests_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.decode_request(data)


@pytest.mark.parametrize("data, whole", [(b"hold\nAB", False), (b"hold\nABCDE\n", False),
                                         (b"hold\nABCDE\n\n", True), (b"\n\n", True)])
def test_a_request_is_complete_at_its_empty_line(data: bytes, whole: bool) -> None:
    assert wire.complete(data) is whole


@pytest.mark.parametrize("reply, count, reason", [
    (b"OK 0\n", 0, None), (b"OK 12\n", 12, None),
    (b"ERR bad request: unknown action\n", None, "^bad request: unknown action$"),
    (b"", None, "^no reply$"), (b"OK\n", None, "unreadable"), (b"OK -1\n", None, "unreadable"),
    (b"hello\n", None, "unreadable"),
])
def test_replies(reply: bytes, count: int | None, reason: str | None) -> None:
    if reason is None:
        assert wire.decode_reply(reply) == count
    else:
        with pytest.raises(wire.ProtocolError, match=reason):
            wire.decode_reply(reply)


def test_replies_written() -> None:
    assert wire.ok(3) == b"OK 3\n"
    assert wire.err("postsuper: fatal:\n  bad\x00 thing") == b"ERR postsuper: fatal: bad thing\n"
    assert wire.err("") == b"ERR failed\n"
    assert len(wire.err("x" * 5000)) < 320


@pytest.mark.parametrize("stderr, done", [
    ("postsuper: Placed on hold: 2 messages\n", 2),
    ("postsuper: Released from hold: 1 message\n", 1),
    ("postsuper: Requeued: 3 messages\npostsuper: Deleted: 1 message\n", 4),
    ("", 0),
])
def test_what_postsuper_says_it_did(stderr: str, done: int) -> None:
    assert wire.done_count(stderr) == done


def test_every_action_has_a_flag() -> None:
    assert set(wire.FLAGS) == set(QueueAction)
