"""lookupd on PostgreSQL writes its sync status to ``lookupd-sync.json`` in the node's state
directory (issue 11 point 3): after every sync, while the database is gone, at shutdown; a
write that fails never stops the sync. Real PostgreSQL servers (a private one where the test
stops it); every wait is bounded. ``mrod health`` reading it: tests/ops/test_health_outage.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

import pytest

from mrod.infra.engine import Target
from mrod.lookupd import pgholder
from mrod.lookupd.daemon import Lookupd
from mrod.operations import syncstatus
from tests.conftest import make_config
from tests.data import seed
from tests.harness import postgres

WAIT = 20.0
KEYS = {"node", "database", "synced_at", "connected", "domains", "running", "pid", "written_at"}


def target_of(server: postgres.Cluster, name: str) -> Target:
    return Target(url=server.url(name), password_file=str(server.password_file))


async def seed_domains(target: Target) -> None:
    from mrod.infra import db

    async with db.opened(target) as conn:
        await seed(conn, relays=[dict(name="primary", host="127.0.0.1", port=9)],
                   domains=[dict(name="one.example", relay="primary"), dict(name="two.example", relay="primary")])


async def until_status(path: Path, wanted: Callable[[syncstatus.SyncStatus], bool], what: str) -> syncstatus.SyncStatus:
    deadline = time.monotonic() + WAIT
    while True:
        status = syncstatus.read(path)
        if wanted(status):
            return status
        assert time.monotonic() < deadline, f"the sync status never showed {what}: {status}"
        await asyncio.sleep(0.1)


async def test_lookupd_writes_its_sync_status_and_an_outage_shows_in_it(
        tmp_path: Path, private_cluster: postgres.Cluster) -> None:
    server = private_cluster
    target = target_of(server, server.new_database())
    await seed_domains(target)
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file},
                      node={"name": "mx-a"})
    path = syncstatus.path_for(cfg)
    assert path is not None and path.parent == cfg.database.path.parent    # beside the snapshot file
    daemon = Lookupd(cfg)
    await daemon.start()
    try:
        first = await until_status(path, lambda s: s.connected and s.domains == 2, "a sync")
        assert (first.verdict, first.node, first.pid, first.running) == ("fresh", "mx-a", os.getpid(), True)
        text = path.read_text()
        assert set(json.loads(text)) == KEYS
        assert first.database == target.describe() and server.password not in text   # never the password
        # Rewritten after every sync (every POLL seconds), not only when something changes.
        again = await until_status(path, lambda s: s.synced_at is not None and first.synced_at is not None
                             and s.synced_at > first.synced_at, "a later sync")
        assert again.written_at is not None and first.written_at is not None and again.written_at > first.written_at
        server.pause()
        lost = await until_status(path, lambda s: not s.connected, "the database lost")
        # While the database is gone lookupd keeps writing (it is alive) and the staleness grows.
        later = await until_status(path, lambda s: (s.staleness or 0) > (lost.staleness or 0) + pgholder.POLL
                             and (s.written_at or 0) > (lost.written_at or 0), "a growing staleness")
        assert (later.connected, later.alive, later.synced_at) == (False, True, lost.synced_at)
        assert later.line().endswith("(database unreachable)")
        assert later.synced_at is not None
        judged = syncstatus.read(path, now=later.synced_at + syncstatus.STALE_AFTER + 1)
        assert judged.verdict == "stale" and "stale (last sync" in judged.line()
        # The metric says the same as the file.
        assert abs((daemon.service.staleness() or 0) - (syncstatus.read(path).staleness or 0)) < pgholder.POLL + 1
    finally:
        await daemon.stop()
    stopped = syncstatus.read(path)
    assert (stopped.running, stopped.connected, stopped.verdict) == (False, False, "stale")
    assert stopped.line().startswith("stopped ")


async def test_a_status_file_that_cannot_be_written_is_logged_once_and_the_sync_goes_on(
        tmp_path: Path, pg_database: tuple[postgres.Cluster, str], caplog: pytest.LogCaptureFixture) -> None:
    target = target_of(*pg_database)
    await seed_domains(target)
    cfg = make_config(tmp_path, database={"url": target.url, "password_file": target.password_file})
    path = syncstatus.path_for(cfg)
    assert path is not None
    path.mkdir(parents=True)          # a directory where the file should go: every write fails
    caplog.set_level(logging.INFO, logger="mrod.lookupd")
    daemon = Lookupd(cfg)
    await daemon.start()
    try:
        await asyncio.sleep(2 * pgholder.POLL + 0.5)     # a few syncs, each trying to write the file
        assert (daemon.service.staleness() or 0) < pgholder.POLL + 1      # synced on, and answers
        assert daemon.service.snapshot_domains == 2
    finally:
        await daemon.stop()
    complaints = [r for r in caplog.records if "sync status" in r.getMessage()]
    assert len(complaints) == 1 and complaints[0].levelno == logging.WARNING
    assert str(path) in complaints[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
