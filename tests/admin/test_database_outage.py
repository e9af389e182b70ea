"""The panel on PostgreSQL when the server drops its sessions (a restart, a failover): the
request that meets a dead session gets a clear error page, never a 500, and the pool opens a
new session for the next one — no restart of mrod needed."""

from __future__ import annotations

import pytest

from tests.harness.postgres import cluster

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


async def test_dropped_sessions_are_replaced(admin_panel, panel_cfg) -> None:
    status, page = await admin_panel.get("/domains")
    assert status == 200
    dbname = panel_cfg.database.url.rsplit("/", 1)[1]
    for _ in range(2):
        killed = cluster().admin(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                 f" WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
        assert killed[0][0] >= 1
        answers = [await admin_panel.get("/domains") for _ in range(6)]
        statuses = [s for s, _ in answers]
        assert 500 not in statuses, statuses
        assert set(statuses) <= {200, 503} and 503 in statuses, statuses
        failed = [p for s, p in answers if s != 200]
        assert all("database postgresql://mrod@127.0.0.1:" in p and "unreachable" in p for p in failed), failed
        assert statuses[-1] == 200 and "Domains" in answers[-1][1]
