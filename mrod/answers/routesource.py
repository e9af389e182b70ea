"""Open the routing read side (RouteStore) on whichever engine the config names: SQLite's
read-only file connection, or a read-only PostgreSQL session with the same query surface."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, cast

from mrod.answers.routestore import RouteStore
from mrod.infra.engine import Target

if TYPE_CHECKING:
    from mrod.infra.db import Where


def open_store(where: Where, busy_timeout_ms: int = 0) -> RouteStore:
    target = Target.of(where)
    if target.url:
        from mrod.infra.pgread import ReadConnection    # psycopg only for a PostgreSQL URL

        # ReadConnection answers execute()/close() as RouteStore uses them on sqlite3's.
        return RouteStore(cast(sqlite3.Connection, ReadConnection.open(target, busy_timeout_ms / 1000 or 5.0)))
    assert target.path is not None
    return RouteStore.open(target.path, busy_timeout_ms)
