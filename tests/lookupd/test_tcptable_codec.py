"""tcp_table codec: %-encoding as Postfix's hex_quote does it, lines, replies."""

from __future__ import annotations

import pytest

from mrod.lookupd import tcptable
from mrod.lookupd.errors import BadRequest, TooLong
from mrod.infra.limits import TCP_TABLE_MAX_REPLY


@pytest.mark.parametrize(
    "raw,quoted",
    [
        (b"example.com", b"example.com"),
        (b"a b", b"a%20b"),
        (b"100%", b"100%25"),
        ("bücher".encode(), b"b%C3%BCcher"),
        (b"tab\there\r\n", b"tab%09here%0D%0A"),
        (b"\x7f\x00", b"%7F%00"),
    ],
)
def test_quote_matches_postfix_hex_quote(raw: bytes, quoted: bytes) -> None:
    assert tcptable.quote(raw) == quoted
    assert tcptable.unquote(quoted) == raw


def test_unquote_accepts_lowercase_hex() -> None:
    assert tcptable.unquote(b"b%c3%bccher") == "bücher".encode()


@pytest.mark.parametrize("bad", [b"50%", b"50%2", b"%zz", b"%%"])
def test_unquote_refuses_broken_escapes(bad: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        tcptable.unquote(bad)
    assert info.value.reply is not None and info.value.reply.startswith(b"400 ")


@pytest.mark.parametrize("chunk", [4096, 16, 1])
def test_lines_in_chunks(chunk: int) -> None:
    data = b"get example.com\nget a%20b@example.com\r\nget x\n"
    dec = tcptable.LineDecoder()
    out = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i:i + chunk])
        while (line := dec.next()) is not None:
            out.append(tcptable.parse_request(line))
    assert out == [b"example.com", b"a b@example.com", b"x"]


def test_overlong_line_is_refused() -> None:
    dec = tcptable.LineDecoder(max_length=50)
    dec.feed(b"get " + b"a" * 60)
    with pytest.raises(TooLong):
        dec.next()


@pytest.mark.parametrize("line", [b"put a b", b"get", b"GETX a", b""])
def test_only_get_is_understood(line: bytes) -> None:
    with pytest.raises(BadRequest):
        tcptable.parse_request(line)


def test_replies() -> None:
    assert tcptable.encode_reply("OK", "relay:[mx.example.net]:25") == b"200 relay:[mx.example.net]:25\n"
    assert tcptable.encode_reply("OK", "a b%") == b"200 a%20b%25\n"
    assert tcptable.encode_reply("NOTFOUND", "") == b"500 not-found\n"
    assert tcptable.encode_reply("TEMP", "db locked") == b"400 db%20locked\n"


def test_replies_stay_within_postfix_limit() -> None:
    reply = tcptable.encode_reply("OK", "é" * 4000)
    assert reply.startswith(b"400 ") and len(reply) <= TCP_TABLE_MAX_REPLY
    assert len(tcptable.encode_reply("TEMP", "é" * 4000)) <= TCP_TABLE_MAX_REPLY
