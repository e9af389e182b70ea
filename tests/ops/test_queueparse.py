"""``postqueue -j`` parsing and per-domain sums, table-driven over output captured from a real
Postfix 3.7 instance (tests/ops/data/postqueue-j.jsonl: four messages queued while the primary
was down — two recipients in two domains, a null-sender message, a mixed-case domain, one on
hold), fed whole and in small chunks, with unknown members, bad lines and overlong lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrod.operations.queueparse import Aggregator, QueueParser, recipient_domain

CAPTURED = (Path(__file__).parent / "data" / "postqueue-j.jsonl").read_bytes()
REASON = "connect to 127.0.0.1[127.0.0.1]:53971: Connection refused"


def parse(data: bytes, chunk: int, max_line: int = 1 << 20) -> tuple[list, QueueParser]:
    parser = QueueParser(max_line)
    out = []
    for i in range(0, len(data), chunk):
        out += parser.feed(data[i:i + chunk])
    out += parser.close()
    return out, parser


@pytest.mark.parametrize("chunk", [1, 7, 128, 4096, 1 << 20])
def test_real_output_parses_in_any_chunking(chunk: int) -> None:
    messages, parser = parse(CAPTURED, chunk)
    assert parser.bad_lines == 0
    assert [m.queue_name for m in messages] == ["deferred", "deferred", "deferred", "hold"]
    bounce = messages[0]
    assert bounce.sender == "MAILER-DAEMON" and bounce.size == 1290
    assert bounce.recipients == (("c@example.org", REASON),)
    assert [a for a, _ in messages[1].recipients] == ["a@example.com", "b@sub.example.com"]
    assert all(isinstance(m.arrival_time, int) for m in messages)


def test_empty_queue_is_no_output() -> None:
    messages, parser = parse(b"", 10)
    assert messages == [] and parser.bad_lines == 0


def test_last_line_without_newline_counts() -> None:
    messages, _ = parse(CAPTURED.rstrip(b"\n"), 50)
    assert len(messages) == 4


def _lines() -> list[dict]:
    return [json.loads(line) for line in CAPTURED.splitlines()]


def test_unknown_members_are_ignored_and_remembered() -> None:
    lines = _lines()
    lines[0]["future_member"] = {"nested": [1, 2]}
    lines[1]["recipients"][0]["orcpt"] = "x"
    data = b"".join(json.dumps(obj).encode() + b"\n" for obj in lines)
    messages, parser = parse(data, 33)
    assert len(messages) == 4 and parser.bad_lines == 0
    assert parser.unknown_fields == {"future_member"}


@pytest.mark.parametrize("bad", [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"queue_id": "ABC"}',                                          # no recipients
    b'{"queue_id": 5, "recipients": []}',                            # queue id not text
    b'{"queue_id": "ABC", "recipients": [{"delay_reason": "x"}]}',   # recipient without address
    b"\xff\xfe garbage bytes",
    b'{"queue_id": "ABC", "recipients": [',                          # cut short
])
def test_a_bad_line_is_counted_and_the_rest_survives(bad: bytes) -> None:
    lines = CAPTURED.splitlines(keepends=True)
    data = lines[0] + bad + b"\n" + b"".join(lines[1:])
    messages, parser = parse(data, 16)
    assert len(messages) == 4
    assert parser.bad_lines == 1


def test_overlong_line_is_skipped_without_being_kept() -> None:
    lines = CAPTURED.splitlines(keepends=True)
    huge = b'{"queue_id": "X", "recipients": [' + b'{"address": "x@example.com"},' * 5000 + b"]}\n"
    parser = QueueParser(max_line=2000)
    out = parser.feed(lines[0]) + parser.feed(huge[:1500]) + parser.feed(huge[1500:3000])
    assert len(parser._buffer) <= 2000
    out += parser.feed(huge[3000:]) + parser.feed(b"".join(lines[1:])) + parser.close()
    assert len(out) == 4 and parser.bad_lines == 1


def test_missing_numbers_are_tolerated() -> None:
    line = b'{"queue_id": "A1", "queue_name": "active", "recipients": [{"address": "x@example.com"}]}\n'
    [message], parser = parse(line, 5)
    assert message.arrival_time is None and message.size == 0 and message.recipients == (("x@example.com", None),)


@pytest.mark.parametrize("address, domain", [
    ("d@Example.COM", "example.com"),
    ("user@b\u00fccher.example", "xn--bcher-kva.example"),
    ('"a b"@example.org', "example.org"),
    ("MAILER-DAEMON", ""),
])
def test_recipient_domain(address: str, domain: str) -> None:
    assert recipient_domain(address) == domain


def test_sums_per_recipient_domain_and_per_row() -> None:
    messages, _ = parse(CAPTURED, 4096)
    rows = {"example.com": (1, "example.com"), "sub.example.com": (1, "example.com"),
            "example.org": (2, "example.org")}
    agg = Aggregator(rows.get)
    agg.add_all(messages)
    assert agg.messages == 4 and agg.bytes == 1290 + 295 + 295 + 318
    assert agg.queues == {"deferred": 3, "hold": 1}
    com, sub, org = agg.domains["example.com"], agg.domains["sub.example.com"], agg.domains["example.org"]
    assert (com.messages, com.bytes, com.recipients) == (2, 590, 2)       # a@ and d@Example.COM
    assert (sub.messages, sub.bytes) == (1, 295)
    assert (org.messages, org.bytes, org.recipients) == (3, 1290 + 295 + 318, 3)
    assert org.queues == {"deferred": 2, "hold": 1}
    assert org.last_reason == REASON and org.oldest == messages[0].arrival_time
    # The row example.com (with its subdomain): the two-recipient message counts once.
    row = agg.rows[1]
    assert (row.name, row.messages, row.bytes, row.recipients) == ("example.com", 2, 590, 3)
    assert agg.domains_of(1) == ["example.com", "sub.example.com"]
    assert agg.domains_of(2) == ["example.org"]


def test_domains_not_ours_are_summed_but_belong_to_no_row() -> None:
    line = (b'{"queue_id": "B", "queue_name": "deferred", "arrival_time": 5, "message_size": 10,'
            b' "sender": "", "recipients": [{"address": "x@elsewhere.test", "delay_reason": "r1"}]}\n')
    messages, _ = parse(line, 100)
    agg = Aggregator(lambda d: None)
    agg.add_all(messages)
    assert agg.domains["elsewhere.test"].messages == 1 and agg.rows == {}


def test_last_reason_is_the_newest_messages() -> None:
    lines = [
        {"queue_id": "A", "arrival_time": 100, "message_size": 1, "recipients": [{"address": "a@x.test", "delay_reason": "old"}]},
        {"queue_id": "B", "arrival_time": 300, "message_size": 1, "recipients": [{"address": "b@x.test", "delay_reason": "new"}]},
        {"queue_id": "C", "arrival_time": 200, "message_size": 1, "recipients": [{"address": "c@x.test", "delay_reason": "mid"}]},
        {"queue_id": "D", "arrival_time": 400, "message_size": 1, "recipients": [{"address": "d@x.test"}]},
    ]
    messages, _ = parse(b"".join(json.dumps(o).encode() + b"\n" for o in lines), 64)
    agg = Aggregator()
    agg.add_all(messages)
    q = agg.domains["x.test"]
    assert (q.oldest, q.last_reason, q.messages) == (100, "new", 4)
