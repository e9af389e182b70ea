"""The queue message by message: filtered, paged, in bounded memory (issue 21.5).

A page is the first ``limit`` matching messages **in queue-id order after a cursor** (the last
queue id of the previous page). Why a queue id and not an offset, and why not postqueue's own
order: ``postqueue -j`` walks the queue directories, so its order changes as messages move
between queues (deferred -> active -> deferred) and as they leave; an offset into that order
skips or repeats messages between two pages. Queue ids are unique and never reused while a
message exists, so "ids greater than the cursor" is stable: a message that left is simply not
there, one that arrived is shown where its id sorts. The price: each page reads the whole
stream (a page can only be known once every message was seen) — time grows with the queue,
memory does not: the lister keeps the ``limit + 1`` smallest matching ids (the extra one says
whether there is a next page) and a count. BENCHMARKS.md has the figures.

Who sees what: ``visible`` (None: everything, the ``queue`` permission without an owner
restriction) is the set of domain rows a ``domains_own`` user owns; such a user sees a message
only when **every** recipient is in one of them. A message with recipients in other people's
domains too is hidden, not shown read-only: its envelope names other customers' recipients,
and hold/delete would act on their mail as well.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any, Hashable

from mrod.operations import queuetimes
from mrod.operations.queueparse import QueuedMessage, recipient_domain
from mrod.operations.queueroutes import Classify

MAX_LIMIT = 1000


@dataclass(frozen=True)
class QueueFilter:
    domain_id: int | None = None        # an mrod domain row: a recipient routed by it matches
    domain_name: str | None = None      # that row's name (or any recipient domain, exactly)
    queue: str | None = None            # active, deferred, hold, incoming, maildrop
    sender: str | None = None           # substring, case-insensitive
    recipient: str | None = None        # substring of any recipient, case-insensitive
    min_age: int | None = None          # seconds since arrival, at least
    visible: frozenset[int] | None = None   # domain rows the viewer owns (None: all)


@dataclass(frozen=True)
class Listed:
    message: QueuedMessage
    domains: tuple[str, ...]            # the mrod domains (row names) its recipients belong to
    inside: bool                        # every recipient in the filtered domain (or no domain filter)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        m = self.message
        now_s = int(now if now is not None else time.time())
        return {"queue_id": m.queue_id, "queue": m.queue_name, "sender": m.sender, "size": m.size,
                "arrival_time": m.arrival_time,
                "age_seconds": None if m.arrival_time is None else max(0, now_s - m.arrival_time),
                "age": queuetimes.age(m.arrival_time), "reason": last_reason(m),
                "recipients": [{"address": a, "delay_reason": r} for a, r in m.recipients],
                "domains": list(self.domains), "only_this_domain": self.inside}


def last_reason(message: QueuedMessage) -> str | None:
    """The delay reason postqueue shows last for the message (Postfix keeps one per recipient)."""
    found = [r for _, r in message.recipients if r]
    return found[-1] if found else None


@dataclass
class Page:
    messages: list[Listed]
    total: int                          # every match in the queue, not only this page's
    next_after: str | None              # the cursor of the next page (None: this is the last)
    bad_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        now = time.time()
        return {"messages": [m.as_dict(now) for m in self.messages], "total": self.total,
                "next_after": self.next_after, "bad_lines": self.bad_lines}


class Matcher:
    """Whether one message passes a filter; recipient domains classified once each."""

    def __init__(self, flt: QueueFilter, classify: Classify | None, now: float | None = None) -> None:
        self.flt = flt
        self.classify = classify
        self.now = int(now if now is not None else time.time())
        self.sender = (flt.sender or "").casefold()
        self.recipient = (flt.recipient or "").casefold()
        self._rows: dict[str, tuple[Hashable, str] | None] = {}
        self._domains: dict[str, str] = {}

    def row(self, domain: str) -> tuple[Hashable, str] | None:
        if domain not in self._rows:
            self._rows[domain] = self.classify(domain) if self.classify is not None and domain else None
        return self._rows[domain]

    def domain_of(self, address: str) -> str:
        """recipient_domain, remembered per spelling of the domain (a queue repeats them a lot)."""
        raw = address[address.rfind("@") + 1:] if "@" in address else ""
        found = self._domains.get(raw)
        if found is None:
            found = self._domains[raw] = recipient_domain(address)
        return found

    def match(self, m: QueuedMessage) -> Listed | None:
        flt = self.flt
        if flt.queue and m.queue_name != flt.queue:
            return None
        if flt.min_age is not None and (m.arrival_time is None or self.now - m.arrival_time < flt.min_age):
            return None
        if self.sender and self.sender not in m.sender.casefold():
            return None
        if self.recipient and not any(self.recipient in a.casefold() for a, _ in m.recipients):
            return None
        if flt.visible is None and flt.domain_id is None and not flt.domain_name:
            return Listed(m, (), True)      # nothing to classify for: names() fills in what is shown
        domains = [self.domain_of(a) for a, _ in m.recipients]
        rows = [self.row(d) for d in domains]
        if flt.visible is not None and not all(r is not None and r[0] in flt.visible for r in rows):
            return None
        inside = True
        if flt.domain_id is not None or flt.domain_name:
            hits = [(r is not None and r[0] == flt.domain_id) or d == flt.domain_name
                    for d, r in zip(domains, rows, strict=True)]
            if not any(hits):
                return None
            inside = all(hits)
        return Listed(m, _names(rows), inside)

    def named(self, listed: Listed) -> Listed:
        """The listed message with the mrod domains it goes to (for one the page keeps)."""
        if listed.domains:
            return listed
        rows = [self.row(self.domain_of(a)) for a, _ in listed.message.recipients]
        return Listed(listed.message, _names(rows), listed.inside)


def _names(rows: list[tuple[Hashable, str] | None]) -> tuple[str, ...]:
    return tuple(sorted({r[1] for r in rows if r is not None}))


class Lister:
    """Keeps the ``limit + 1`` smallest matching queue ids after ``after``, and counts matches."""

    def __init__(self, matcher: Matcher, limit: int, after: str | None = None) -> None:
        self.matcher, self.limit, self.after = matcher, limit, after or ""
        self.total = 0
        self._ids: list[str] = []
        self._kept: dict[str, Listed] = {}

    def add_all(self, messages: list[QueuedMessage]) -> None:
        for message in messages:
            self.add(message)

    def add(self, message: QueuedMessage) -> None:
        listed = self.matcher.match(message)
        if listed is None:
            return
        self.total += 1
        qid = message.queue_id
        if qid <= self.after or qid in self._kept:
            return
        if len(self._ids) > self.limit and qid >= self._ids[-1]:
            return
        bisect.insort(self._ids, qid)
        self._kept[qid] = self.matcher.named(listed)     # classified only when kept
        if len(self._ids) > self.limit + 1:
            del self._kept[self._ids.pop()]

    def page(self, bad_lines: int = 0) -> Page:
        shown = self._ids[:self.limit]
        more = len(self._ids) > self.limit
        return Page([self._kept[q] for q in shown], self.total, shown[-1] if more and shown else None, bad_lines)


@dataclass
class Collector:
    """Every matching queue id (for an action on all matches): ids only, ~60 bytes each."""

    matcher: Matcher
    whole_only: bool = True             # only messages whose recipients are all in the domain
    ids: list[str] = field(default_factory=list)
    skipped: int = 0                    # matches left out: recipients in other domains too

    def add_all(self, messages: list[QueuedMessage]) -> None:
        for message in messages:
            listed = self.matcher.match(message)
            if listed is None:
                continue
            if self.whole_only and not listed.inside:
                self.skipped += 1
            else:
                self.ids.append(message.queue_id)
