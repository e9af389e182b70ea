"""Read Postfix's queue (``postqueue -j``) into per-domain figures.

``read(cfg)`` streams ``postqueue [-c DIR] -j`` and aggregates per recipient domain and per
mrod domain row (mrod.operations.queueroutes: a subdomain counts for the domain that relays it).
A queue of any size is read in bounded memory; bad lines are counted, not fatal.

The event loop only moves bytes: parsing, aggregating and classifying run on one worker thread
per reading. Classifying asks the route store once per new recipient domain — a busy SQLite
waits up to lookup_deadline, a PostgreSQL answers over the network — and a queue of many domains
asks many times; on the loop that would stall every panel request (and lookupd's answers in
``mrod serve``) for the whole reading. One thread, not a pool: a sqlite3 connection stays on the
thread that opened it.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from mrod.infra import db
from mrod.infra.config import Config
from mrod.operations import postqueue, queueroutes
from mrod.operations.postqueue import QueueUnavailable
from mrod.operations.queueparse import Aggregator, DomainQueue, QueueParser

log = logging.getLogger("mrod.queue")

T = TypeVar("T")


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


class _Reading:
    """One reading's parser and aggregator, driven on their own worker thread."""

    def __init__(self, cfg: Config) -> None:
        self.parser = QueueParser(cfg.queue.max_line_bytes)
        self.aggregator = Aggregator()
        self._close_store: Callable[[], None] = lambda: None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mrod-queue-read")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def open_routes(self, cfg: Config) -> None:           # on the worker
        self.aggregator.classify, self._close_store = queueroutes.classifier(cfg)

    def feed(self, chunk: bytes) -> None:                 # on the worker
        self.aggregator.add_all(self.parser.feed(chunk))

    def finish(self) -> None:                             # on the worker
        self.aggregator.add_all(self.parser.close())

    def close(self) -> None:
        # Queued behind whatever the worker still runs (a cancelled reading's query): the store
        # closes on the thread that opened it, and the event loop does not wait for it.
        self._worker.submit(lambda: self._close_store())
        self._worker.shutdown(wait=False)


async def read(cfg: Config, *, classify_rows: bool = True) -> QueueReport:
    """The queue now. Raises QueueUnavailable."""
    reading = _Reading(cfg)
    try:
        if classify_rows:
            await reading.run(reading.open_routes, cfg)
        proc = await postqueue.spawn(postqueue.command(cfg, "-j"))
        stderr_task = asyncio.ensure_future(postqueue.read_limited(proc.stderr))
        try:
            async with asyncio.timeout(cfg.queue.timeout):
                assert proc.stdout is not None
                while chunk := await proc.stdout.read(postqueue.CHUNK):
                    await reading.run(reading.feed, chunk)
                await reading.run(reading.finish)
                stderr = await stderr_task
                code = await proc.wait()
        except TimeoutError:
            await postqueue.kill(proc)
            raise QueueUnavailable(f"postqueue -j did not finish within {cfg.queue.timeout:g}s "
                                   "([queue] timeout)") from None
        finally:
            stderr_task.cancel()
            if proc.returncode is None:
                await postqueue.kill(proc)
    finally:
        reading.close()
    if code != 0:
        raise QueueUnavailable(postqueue.failure("postqueue -j", code, stderr))
    parser, aggregator = reading.parser, reading.aggregator
    if parser.bad_lines:
        log.warning("postqueue -j: skipped %d line(s) that were not queue entries", parser.bad_lines)
    return QueueReport(
        domains=aggregator.domains, rows={k: v for k, v in aggregator.rows.items() if isinstance(k, int)},
        messages=aggregator.messages, bytes=aggregator.bytes, queues=dict(aggregator.queues),
        bad_lines=parser.bad_lines, unknown_fields=sorted(parser.unknown_fields), read_at=db.now(),
        _aggregator=aggregator)
