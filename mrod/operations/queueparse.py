"""``postqueue -j`` output, parsed and aggregated — pure, no I/O.

Postfix prints one JSON object per queued message, one a line, no array around them and
nothing at all for an empty queue (postqueue(1), Postfix 3.1+). mrod reads that as a stream
(a queue can hold millions of messages) and keeps only per-domain sums:

* ``QueueParser.feed(bytes)`` -> complete messages; a line that is not a JSON object with the
  members mrod needs is skipped and counted (``bad_lines``) — one odd line never loses the
  rest of the report. Members mrod does not know are ignored (and their names remembered for
  the curious); a line longer than ``max_line`` is skipped without being held in memory.
* ``Aggregator.add(message)`` sums per recipient domain and, through ``classify``, per mrod
  domain row (a message with recipients in two subdomains of one row counts once for it).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable

from mrod.infra import names

KNOWN_FIELDS = frozenset({"queue_name", "queue_id", "arrival_time", "message_size", "forced_expire",
                          "sender", "recipients"})


@dataclass(frozen=True)
class QueuedMessage:
    queue_name: str
    queue_id: str
    arrival_time: int | None
    size: int
    sender: str
    recipients: tuple[tuple[str, str | None], ...]   # (address, delay_reason)


class QueueParser:
    def __init__(self, max_line: int = 16 * 1024 * 1024) -> None:
        self.max_line = max_line
        self.bad_lines = 0
        self.unknown_fields: set[str] = set()
        self._buffer = bytearray()
        self._skipping = False      # inside a line that was too long: drop until its newline

    def feed(self, data: bytes) -> list[QueuedMessage]:
        out: list[QueuedMessage] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._take(data[start:end], out, complete=True)
            start = end + 1
        self._take(data[start:], out, complete=False)
        return out

    def close(self) -> list[QueuedMessage]:
        """The end of the output: a last line without a newline still counts."""
        out: list[QueuedMessage] = []
        if self._buffer and not self._skipping:
            self._line(bytes(self._buffer), out)
        self._buffer.clear()
        self._skipping = False
        return out

    def _take(self, piece: bytes, out: list[QueuedMessage], complete: bool) -> None:
        if self._skipping:
            if complete:
                self._skipping = False
            return
        if len(self._buffer) + len(piece) > self.max_line:
            self.bad_lines += 1
            self._buffer.clear()
            self._skipping = not complete
            return
        if not complete:
            self._buffer += piece
            return
        if self._buffer:
            line = bytes(self._buffer) + piece
            self._buffer.clear()
        else:
            line = piece
        self._line(line, out)

    def _line(self, line: bytes, out: list[QueuedMessage]) -> None:
        if not line.strip():
            return
        message = self.parse_line(line)
        if message is None:
            self.bad_lines += 1
        else:
            out.append(message)

    def parse_line(self, line: bytes) -> QueuedMessage | None:
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        self.unknown_fields.update(k for k in obj if k not in KNOWN_FIELDS)
        queue_id, recipients = obj.get("queue_id"), obj.get("recipients")
        if not isinstance(queue_id, str) or not isinstance(recipients, list):
            return None
        rcpts = []
        for item in recipients:
            if not isinstance(item, dict) or not isinstance(item.get("address"), str):
                return None
            reason = item.get("delay_reason")
            rcpts.append((item["address"], reason if isinstance(reason, str) and reason else None))
        return QueuedMessage(
            queue_name=_text(obj.get("queue_name")) or "unknown",
            queue_id=queue_id,
            arrival_time=_number(obj.get("arrival_time")),
            size=_number(obj.get("message_size")) or 0,
            sender=_text(obj.get("sender")),
            recipients=tuple(rcpts),
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def recipient_domain(address: str) -> str:
    """The domain of a queued recipient, as mrod stores names (lowercase A-label)."""
    at = address.rfind("@")
    if at < 0:
        return ""
    raw = address[at + 1:]
    return names.lookup_domain(raw) or raw.lower()


@dataclass
class DomainQueue:
    """What waits for one domain: messages (each counted once), their bytes, recipients."""

    name: str
    messages: int = 0
    bytes: int = 0
    recipients: int = 0
    oldest: int | None = None           # arrival time (epoch seconds) of the oldest message
    last_reason: str | None = None      # delay reason of the most recently arrived delayed message
    queues: Counter[str] = field(default_factory=Counter)
    _reason_at: int = -1

    def add(self, message: QueuedMessage, recipients: int, reasons: list[str]) -> None:
        self.messages += 1
        self.bytes += message.size
        self.recipients += recipients
        self.queues[message.queue_name] += 1
        arrival = message.arrival_time
        if arrival is not None and (self.oldest is None or arrival < self.oldest):
            self.oldest = arrival
        if reasons and (arrival or 0) >= self._reason_at:
            self.last_reason = reasons[-1]
            self._reason_at = arrival or 0

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.name, "messages": self.messages, "bytes": self.bytes,
                "recipients": self.recipients, "oldest": self.oldest, "last_reason": self.last_reason,
                "queues": dict(sorted(self.queues.items()))}


class Aggregator:
    """Sums per recipient domain and per ``classify(domain)`` key (None: not one of ours)."""

    def __init__(self, classify: Callable[[str], tuple[Hashable, str] | None] | None = None) -> None:
        self.classify = classify
        self._classified: dict[str, tuple[Hashable, str] | None] = {}
        self.domains: dict[str, DomainQueue] = {}
        self.rows: dict[Hashable, DomainQueue] = {}
        self.messages = 0
        self.bytes = 0
        self.queues: Counter[str] = Counter()

    def add_all(self, messages: Iterable[QueuedMessage]) -> None:
        for message in messages:
            self.add(message)

    def add(self, message: QueuedMessage) -> None:
        self.messages += 1
        self.bytes += message.size
        self.queues[message.queue_name] += 1
        per_domain: dict[str, list[str | None]] = {}
        for address, reason in message.recipients:
            per_domain.setdefault(recipient_domain(address), []).append(reason)
        per_row: dict[Hashable, tuple[str, int, list[str]]] = {}
        for domain, reasons in per_domain.items():
            found = [r for r in reasons if r]
            queue = self.domains.get(domain)
            if queue is None:
                queue = self.domains[domain] = DomainQueue(domain)
            queue.add(message, len(reasons), found)
            key = self._classify(domain)
            if key is not None:
                row_key, row_name = key
                _, count, row_reasons = per_row.get(row_key, (row_name, 0, []))
                per_row[row_key] = (row_name, count + len(reasons), row_reasons + found)
        for row_key, (row_name, count, row_reasons) in per_row.items():
            queue = self.rows.get(row_key)
            if queue is None:
                queue = self.rows[row_key] = DomainQueue(row_name)
            queue.add(message, count, row_reasons)

    def _classify(self, domain: str) -> tuple[Hashable, str] | None:
        if self.classify is None or not domain:
            return None
        if domain not in self._classified:
            self._classified[domain] = self.classify(domain)
        return self._classified[domain]

    def domains_of(self, row_key: Hashable) -> list[str]:
        """Recipient domains with mail queued that belong to one row (itself or subdomains)."""
        return sorted(d for d, key in self._classified.items() if key is not None and key[0] == row_key)
