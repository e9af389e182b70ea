"""Read Postfix's queue (``postqueue -j``) into per-domain figures.

``read(cfg)`` streams ``postqueue [-c DIR] -j`` and aggregates per recipient domain and per
mrod domain row (mrod.operations.queueroutes: a subdomain counts for the domain that relays it).
A queue of any size is read in bounded memory; bad lines are counted, not fatal.

The event loop only moves bytes: parsing, aggregating and classifying run on one worker thread
per reading (mrod.operations.queuestream, which the message lists share). Classifying asks the
route store once per new recipient domain — a busy SQLite waits up to lookup_deadline, a
PostgreSQL answers over the network — and a queue of many domains asks many times; on the loop
that would stall every panel request (and lookupd's answers in ``mrod serve``) for the whole
reading. One thread, not a pool: a sqlite3 connection stays on the thread that opened it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from mrod.infra import db
from mrod.infra.config import Config
from mrod.operations import queueroutes, queuestream
from mrod.operations.queueparse import Aggregator, DomainQueue

log = logging.getLogger("mrod.queue")


@dataclass
class QueueReport:
    domains: dict[str, DomainQueue]              # by recipient domain
    rows: dict[int, DomainQueue]                 # by mrod domain id (named after the row)
    messages: int
    bytes: int
    queues: dict[str, int]                       # messages per Postfix queue (deferred, hold, ...)
    bad_lines: int
    unknown_fields: list[str]
    read_at: str
    _aggregator: Aggregator | None = field(default=None, repr=False)

    def domains_of(self, domain_id: int) -> list[str]:
        """Recipient domains with mail queued that a row relays (itself and its subdomains)."""
        return self._aggregator.domains_of(domain_id) if self._aggregator else []

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "bytes": self.bytes, "queues": self.queues,
            "bad_lines": self.bad_lines, "unknown_fields": self.unknown_fields, "read_at": self.read_at,
            "domains": [q.as_dict() for q in sorted(self.domains.values(), key=lambda q: q.name)],
            "mrod_domains": [{"id": i, **q.as_dict()} for i, q in sorted(self.rows.items(), key=lambda r: r[1].name)],
        }


async def read(cfg: Config, *, classify_rows: bool = True) -> QueueReport:
    """The queue now. Raises QueueUnavailable."""
    aggregator = Aggregator()

    def open_routes() -> Callable[[], None]:         # on queuestream's worker thread
        aggregator.classify, close_store = queueroutes.classifier(cfg)
        return close_store

    parser = await queuestream.stream(cfg, aggregator.add_all, setup=open_routes if classify_rows else None)
    if parser.bad_lines:
        log.warning("postqueue -j: skipped %d line(s) that were not queue entries", parser.bad_lines)
    return QueueReport(
        domains=aggregator.domains, rows={k: v for k, v in aggregator.rows.items() if isinstance(k, int)},
        messages=aggregator.messages, bytes=aggregator.bytes, queues=dict(aggregator.queues),
        bad_lines=parser.bad_lines, unknown_fields=sorted(parser.unknown_fields), read_at=db.now(),
        _aggregator=aggregator)
