"""socketmap codec: netstrings fed whole and in chunks, errors, replies."""

from __future__ import annotations

import pytest

from mrod.lookupd import socketmap
from mrod.lookupd.errors import BadLength, BadRequest, BadTerminator, TooLong
from mrod.infra.limits import MAX_REQUEST_BYTES, SOCKETMAP_MAX_REPLY

CHUNK_SIZES = [4096, 128, 16, 1]


def decode_all(data: bytes, chunk: int) -> list[bytes]:
    dec = socketmap.NetstringDecoder()
    out = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i:i + chunk])
        while (item := dec.next()) is not None:
            out.append(item)
    return out


GOOD = [
    (b"25:relay_domains example.com,", [b"relay_domains example.com"]),
    (b"0:,", [b""]),
    # two requests in one read, and a key with a space (quoted local part) and UTF-8
    (b"25:relay_domains example.com,32:transport \"john doe\"@example.com,",
     [b"relay_domains example.com", b'transport "john doe"@example.com']),
    ("27:transport x@bücher.example,".encode(), ["transport x@bücher.example".encode()]),
    (b"007:abc def,", [b"abc def"]),  # leading zeros are digits too
]


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
@pytest.mark.parametrize("data,expected", GOOD)
def test_decodes_in_any_chunking(data: bytes, expected: list[bytes], chunk: int) -> None:
    assert decode_all(data, chunk) == expected


BAD = [
    (b"x5:abcde,", BadLength),
    (b" 5:abcde,", BadLength),
    (b"5 :abcde,", BadLength),
    (b"\n5:abcde,", BadLength),
    (b"3:abcd,", BadTerminator),
    (b"3:abc;", BadTerminator),
    (b"%d:" % (MAX_REQUEST_BYTES + 1), TooLong),
    (b"9" * 40, TooLong),
]


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
@pytest.mark.parametrize("data,error", BAD)
def test_rejects_malformed(data: bytes, error: type, chunk: int) -> None:
    with pytest.raises(error):
        decode_all(data, chunk)


def test_too_long_is_refused_before_the_payload_arrives() -> None:
    dec = socketmap.NetstringDecoder(max_length=100)
    dec.feed(b"101:")
    with pytest.raises(TooLong):
        dec.next()


def test_pending_tracks_partial_requests() -> None:
    dec = socketmap.NetstringDecoder()
    assert not dec.pending
    dec.feed(b"5:ab")
    assert dec.next() is None and dec.pending
    dec.feed(b"cde,")
    assert dec.next() == b"abcde" and not dec.pending


@pytest.mark.parametrize(
    "payload,expected",
    [
        (b"relay_domains example.com", ("relay_domains", b"example.com")),
        (b'transport "a b"@example.com', ("transport", b'"a b"@example.com')),
        (b"transport ", ("transport", b"")),
    ],
)
def test_parse_request_splits_at_first_space(payload: bytes, expected: tuple) -> None:
    assert socketmap.parse_request(payload) == expected


@pytest.mark.parametrize("payload", [b"relay_domains", b"", b" example.com", b"\xff\xfe x"])
def test_parse_request_refuses_non_requests(payload: bytes) -> None:
    with pytest.raises(BadRequest):
        socketmap.parse_request(payload)


@pytest.mark.parametrize(
    "status,value,wire",
    [
        ("OK", "relay:[mx.example.net]:25", b"28:OK relay:[mx.example.net]:25,"),
        ("NOTFOUND", "", b"9:NOTFOUND ,"),
        ("TEMP", "database locked", b"20:TEMP database locked,"),
    ],
)
def test_encode_reply(status: str, value: str, wire: bytes) -> None:
    assert socketmap.encode_reply(status, value) == wire


def test_reply_is_never_a_bare_ok() -> None:
    # Postfix 3.7 reads "OK" without a space as not found.
    assert socketmap.encode_reply("OK", "x").startswith(b"4:OK x")
    assert b"OK," not in socketmap.encode_reply("OK", "x")


def test_oversized_reply_becomes_temp() -> None:
    wire = socketmap.encode_reply("OK", "x" * SOCKETMAP_MAX_REPLY)
    assert decode_all(wire, 4096) == [b"TEMP reply too large for Postfix"]


def test_temp_reason_is_cut_to_what_postfix_logs() -> None:
    [payload] = decode_all(socketmap.encode_reply("TEMP", "r" * 500), 4096)
    assert payload == b"TEMP " + b"r" * 200


def test_whole_takes_exactly_one_complete_netstring() -> None:
    d = socketmap.NetstringDecoder(max_length=100)
    assert d.whole(b"25:relay_domains example.com,") == b"relay_domains example.com"
    assert d.whole(b"0:,") == b""
    # Anything else goes the long way (feed/next), which buffers or raises the right error.
    for data in (b"25:relay_domains example.com", b"5:hello,5:world,", b"3:abcd,", b"x:abc,",
                 b"200:" + b"a" * 200 + b",", b":,", b"25:relay_domains example.comX"):
        assert d.whole(data) is None, data
    d.feed(b"5:he")
    assert d.whole(b"5:hello,") is None       # something is buffered already
