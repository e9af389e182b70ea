"""What a notification is about: events, the context a source reads, and the registry of sources
(the interface is described in the package's docstring, mrod/notify/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable, Iterable

from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import Severity


@dataclass(frozen=True)
class Event:
    kind: str                      # e.g. "relay_down"; with subject, the unit of deduplication
    subject: str                   # what it is about: a relay, a domain, a node
    severity: Severity
    text: str                      # one line a person reads
    domains: tuple[str, ...] = ()  # the domains it affects: their owners are told too
    resolved: str = "resolved"     # the "back" notice's phrase ("is back up")
    since: str | None = None       # when the condition began, if the source knows (db.stamp form)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


@dataclass(frozen=True)
class SourceContext:
    conn: Connection
    cfg: Config
    node: str
    now: datetime


EventSource = Callable[[SourceContext], Awaitable[Iterable[Event]]]

_SOURCES: dict[str, EventSource] = {}


def register(name: str, source: EventSource) -> None:
    """Add (or, under the same name, replace) an event source."""
    _SOURCES[name] = source


def sources() -> dict[str, EventSource]:
    """Every registered source by name (the built-in ones once mrod.notify.conditions is imported)."""
    return dict(_SOURCES)
