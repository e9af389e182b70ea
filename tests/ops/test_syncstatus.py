"""lookupd's sync status file, read without the database (mrod.operations.syncstatus): the
verdict (fresh, stale by its last sync, stale because lookupd stopped writing or stopped,
missing), the sentence `mrod health` prints, and files that are not lookupd's never crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mrod.operations import syncstatus
from mrod.operations.syncstatus import FRESH, MISSING, STALE, STALE_AFTER
from tests.conftest import make_config

NOW = 1_800_000_000.0      # 2027-01-15 08:00:00 UTC


def _written(path: Path, *, synced_ago: float | None, written_ago: float = 0.5, connected: bool = True,
             running: bool = True) -> syncstatus.SyncStatus:
    syncstatus.write(path, node="mx-a", database="postgresql://mrod@db.example/mrod", connected=connected,
                     synced_at=None if synced_ago is None else NOW - synced_ago, domains=3, running=running,
                     now=NOW - written_ago)
    return syncstatus.read(path, now=NOW)


def test_only_postgresql_has_a_sync_status_beside_the_snapshot(tmp_path: Path) -> None:
    assert syncstatus.path_for(make_config(tmp_path, database={"path": str(tmp_path / "mrod.db")})) is None
    cfg = make_config(tmp_path, database={"path": str(tmp_path / "state" / "mrod.db"),
                                          "url": "postgresql://mrod@db.example/mrod"})
    assert syncstatus.path_for(cfg) == tmp_path / "state" / "lookupd-sync.json"


def test_the_file_is_replaced_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / syncstatus.FILE
    status = _written(path, synced_ago=1.25)
    assert (status.verdict, status.connected, status.running, status.domains, status.node) == (
        FRESH, True, True, 3, "mx-a")
    assert status.staleness == pytest.approx(1.25) and status.silence == pytest.approx(0.5)
    assert status.pid == os.getpid() and status.database == "postgresql://mrod@db.example/mrod"
    assert status.line() == "routing snapshot synced 1.2 s ago (database reachable)"
    assert [p.name for p in tmp_path.iterdir()] == [syncstatus.FILE]     # no temporary file left


@pytest.mark.parametrize("synced_ago, written_ago, connected, running, verdict, line", [
    (2.0, 1.0, False, True, FRESH, "routing snapshot synced 2.0 s ago (database unreachable)"),
    (STALE_AFTER, 1.0, True, True, FRESH, "routing snapshot synced 30 s ago (database reachable)"),
    (312.0, 1.0, False, True, STALE, "routing snapshot 312 s stale (last sync 2027-01-15 07:54:48 UTC;"
                                     " database unreachable) — answering from it"),
    (4000.0, 1.0, False, True, STALE, "routing snapshot 4000 s (1h 6m) stale (last sync 2027-01-15 06:53:20 UTC;"
                                      " database unreachable) — answering from it"),
    (None, 1.0, False, True, STALE, "no routing snapshot yet (database unreachable) — answering TEMP"),
    (95.0, 90.0, True, True, STALE, "not running or hung: {path} not written for 90 s"
                                    " (last sync 2027-01-15 07:58:25 UTC)"),
    (5.0, 3.0, False, False, STALE, "stopped 3.0 s ago (last sync 2027-01-15 07:59:55 UTC)"),
])
def test_verdicts_and_what_health_says(tmp_path: Path, synced_ago: float | None, written_ago: float,
                                       connected: bool, running: bool, verdict: str, line: str) -> None:
    path = tmp_path / syncstatus.FILE
    status = _written(path, synced_ago=synced_ago, written_ago=written_ago, connected=connected, running=running)
    assert status.verdict == verdict
    assert status.line() == line.format(path=path)


def test_a_missing_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    status = syncstatus.read(tmp_path / syncstatus.FILE, now=NOW)
    assert status.verdict == MISSING and status.staleness is None and not status.alive
    assert status.line() == f"no sync status in {tmp_path / syncstatus.FILE} (is mrod serve running?)"


@pytest.mark.parametrize("content, problem", [
    (b"", "not a sync status"),
    (b"{", "not a sync status"),
    (b"\xff\xfe", "not a sync status"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"synced_at": 1, "connected": true}', "not a time"),                       # no written_at
    (b'{"synced_at": "yesterday", "connected": true, "written_at": 1}', "not a time"),
    (b'{"synced_at": 1, "connected": "yes", "written_at": 1}', "not true/false"),
    (b'{"synced_at": 1e999, "connected": true, "written_at": 1}', "not a time"),    # infinity
    (b'{"synced_at": NaN, "connected": true, "written_at": 1}', "not a time"),
    (b'{"synced_at": true, "connected": true, "written_at": 1}', "not a time"),
    (b'{"synced_at": 1, "connected": true, "written_at": 1, "running": null}', "not true/false"),
    (b" " * (syncstatus.MAX_BYTES + 1), "too large"),
])
def test_a_file_that_is_not_lookupds_is_missing_never_a_crash(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / syncstatus.FILE
    path.write_bytes(content)
    status = syncstatus.read(path, now=NOW)
    assert status.verdict == MISSING and problem in status.problem
    assert status.line().startswith(f"no sync status in {path} (not a sync status") or "too large" in status.line()


def test_odd_but_readable_values_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / syncstatus.FILE
    path.write_text(json.dumps({"synced_at": NOW - 1, "connected": True, "written_at": NOW + 50,   # clock ahead
                                "node": ["x"], "domains": "many", "pid": True, "extra": {"a": 1}}))
    status = syncstatus.read(path, now=NOW)
    assert (status.verdict, status.silence, status.node, status.domains, status.pid) == (FRESH, 0.0, "", None, None)


def test_an_unreadable_path_is_missing_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / syncstatus.FILE).mkdir()          # a directory where the file should be
    status = syncstatus.read(tmp_path / syncstatus.FILE, now=NOW)
    assert status.verdict == MISSING and status.problem.startswith("unreadable: ")


def test_a_write_that_fails_raises_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        syncstatus.write(tmp_path / "absent" / syncstatus.FILE, node="", database="", synced_at=None,
                         connected=False, domains=None)
    (tmp_path / syncstatus.FILE).mkdir()          # os.replace cannot put a file over a directory
    with pytest.raises(OSError):
        syncstatus.write(tmp_path / syncstatus.FILE, node="", database="", synced_at=None, connected=False,
                         domains=None)
    assert [p.name for p in tmp_path.iterdir()] == [syncstatus.FILE]
