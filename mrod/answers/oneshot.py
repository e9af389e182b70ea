"""Ask routing once: open a read-only RouteStore, ask mrod.answers.routing, close.

For the readers that are not lookupd's hot path — ``mrod lookup``, ``mrod domain show``, the
panel's and the API's "what Postfix is told" — and for lookupd's own slow path when the
database is busy. One busy timeout for all of them: the caller passes lookupd's
``[lookupd] lookup_deadline``, so a question waits for a writer as long as a lookup would.
``ask`` blocks (a CLI, a worker thread); ``ask_off_loop`` runs it in a worker thread, so a long
writer (a BIND import) never stalls an event loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable, TypeVar

from mrod.answers.routestore import RouteStore

if TYPE_CHECKING:
    from mrod.infra.db import Where

T = TypeVar("T")


def ask(where: Where, deadline: float, question: Callable[[RouteStore], T]) -> T:
    """``question(store)`` on a fresh read-only store (SQLite or PostgreSQL, as ``where``
    names) that waits up to ``deadline`` seconds for a busy database. Database errors
    propagate (sqlite3.Error, DatabaseNotReady): lookupd's answer to them is TEMP, and so is
    each caller's."""
    store = RouteStore.open(where, busy_timeout_ms=int(deadline * 1000))
    try:
        return question(store)
    finally:
        store.close()


async def ask_off_loop(where: Where, deadline: float, question: Callable[[RouteStore], T]) -> T:
    return await asyncio.to_thread(ask, where, deadline, question)

