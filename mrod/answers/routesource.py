"""Open the routing read side (RouteStore) on whichever engine the config names (db.open_sync
chooses: SQLite's read-only file connection or a read-only PostgreSQL session)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mrod.answers.routestore import RouteStore
from mrod.infra import db

if TYPE_CHECKING:
    from mrod.infra.db import Where


def open_store(where: Where, busy_timeout_ms: int = 0) -> RouteStore:
    return RouteStore(db.open_sync(where, busy_timeout_ms / 1000))
