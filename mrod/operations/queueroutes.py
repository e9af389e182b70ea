"""Which mrod domain row a queued recipient domain belongs to (routing.match: a subdomain counts
for the domain that relays it), for the jobs that read Postfix's queue.

Everything here waits on a database (a busy SQLite up to lookup_deadline, a PostgreSQL round
trip per query) or reads a file: callers run it off the event loop, on one thread per reading
(mrod.operations.queueread, mrod.operations.nexthops).
"""

from __future__ import annotations

from typing import Callable, Hashable

from mrod.answers import routing, snapshot, snapshotfile
from mrod.answers.routestore import RouteStore
from mrod.infra import names
from mrod.infra.config import Config
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady

Classify = Callable[[str], tuple[Hashable, str] | None]


def routes(cfg: Config) -> tuple[routing.Store, Callable[[], None]] | None:
    """What decides routes for the jobs that read the queue: the database (waiting for a busy
    SQLite as long as a lookup does), or — a shared PostgreSQL that is gone — the routing
    snapshot lookupd keeps on disk (what lookupd itself answers from meanwhile). With ``close``;
    None when neither can be had."""
    try:
        store = RouteStore.open(cfg.database, busy_timeout_ms=int(cfg.lookupd.lookup_deadline * 1000))
    except DatabaseNotReady:
        snap = _snapshot_of(cfg) if Target.of(cfg.database).shared else None
        return None if snap is None else (snap, lambda: None)
    return store, store.close


def classifier(cfg: Config) -> tuple[Classify | None, Callable[[], None]]:
    """routing.match against ``routes``: recipient domain -> (domain id, name) or None; with
    ``close``. The store stays open for the whole queue listing (one per message would be slow)."""
    found = routes(cfg)
    if found is None:
        return None, lambda: None
    return classify_with(found[0]), found[1]


def classify_with(store: routing.Store) -> Classify:
    def classify(domain: str) -> tuple[Hashable, str] | None:
        name = names.lookup_domain(domain)
        found = routing.match(store, name) if name else None
        return (found[0].id, found[0].name) if found else None

    return classify


def _snapshot_of(cfg: Config) -> snapshot.RouteSnapshot | None:
    try:
        return snapshotfile.of_node(cfg)
    except (OSError, ValueError):
        return None
