"""Policy delegation codec: requests in chunks, malformed input, replies."""

from __future__ import annotations

import pytest

from mrod.lookupd import delegation as policy
from mrod.lookupd.errors import BadRequest, TooLong

REQUEST = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
    b"client_address=192.0.2.1\nsender=a@b.example\nrecipient=Joe+x@Example.COM\n"
    b"ccert_subject=CN=x,O=y\nfuture_attribute=whatever\n\n"
)


@pytest.mark.parametrize("chunk", [4096, 7, 1])
def test_requests_in_chunks(chunk: int) -> None:
    dec = policy.PolicyDecoder()
    data = REQUEST * 3
    out = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i:i + chunk])
        while (req := dec.next()) is not None:
            out.append(req)
    assert len(out) == 3 and not dec.pending
    assert out[0]["recipient"] == "Joe+x@Example.COM"
    assert out[0]["ccert_subject"] == "CN=x,O=y"       # split at the first '=' only
    assert out[0]["future_attribute"] == "whatever"      # unknown names are kept, not refused


def test_empty_values_and_crlf() -> None:
    dec = policy.PolicyDecoder()
    dec.feed(b"request=smtpd_access_policy\r\nsender=\r\n\r\n")
    assert dec.next() == {"request": "smtpd_access_policy", "sender": ""}


@pytest.mark.parametrize(
    "data,error",
    [
        (b"no equals sign\n\n", BadRequest),
        (b"=value\n\n", BadRequest),
        (b"\n", BadRequest),
        (b"a=\xff\n\n", BadRequest),
        (b"a=" + b"x" * 9000, TooLong),
        (b"".join(b"a%d=b\n" % i for i in range(101)), TooLong),
    ],
)
def test_malformed(data: bytes, error: type) -> None:
    dec = policy.PolicyDecoder()
    dec.feed(data)
    with pytest.raises(error):
        while dec.next() is not None:
            pass


def test_pending_partial_request() -> None:
    dec = policy.PolicyDecoder()
    dec.feed(b"request=smtpd_access_policy\n")
    assert dec.next() is None and dec.pending


@pytest.mark.parametrize(
    "action,wire",
    [
        ("DUNNO", b"action=DUNNO\n\n"),
        ("DEFER_IF_PERMIT Service paused\nfor maintenance", b"action=DEFER_IF_PERMIT Service paused for maintenance\n\n"),
        ("550 5.1.1 <x@example.com>: unknown", b"action=550 5.1.1 <x@example.com>: unknown\n\n"),
    ],
)
def test_encode_action(action: str, wire: bytes) -> None:
    assert policy.encode_action(action) == wire
