"""``mrod health`` on PostgreSQL — the real CLI, a subprocess, beside a real lookupd — reports
this node's routing snapshot from lookupd's sync status file (issue 11 point 3): fresh, gone
stale in an outage, lookupd stopped; during an outage it still prints that line before its
one-line error about the database, and a stale snapshot makes it exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mrod.infra import config as configmod
from mrod.infra.engine import Target
from mrod.answers import snapshotfile
from mrod.lookupd.daemon import Lookupd
from mrod.operations import syncstatus
from tests.harness import postgres
from tests.lookupd.test_pg_syncstatus import seed_domains, target_of, until_status


def _config_file(tmp_path: Path, target: Target) -> Path:
    path = tmp_path / "mrod.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "state" / "mrod.db"}"\nurl = "{target.url}"\n'
                    f'password_file = "{target.password_file}"\n'
                    '[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n[node]\nname = "mx-a"\n')
    (tmp_path / "state").mkdir()
    return path


def _health(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    return subprocess.run([sys.executable, "-m", "mrod", "--config", str(config), "health", *args],
                          capture_output=True, text=True, timeout=60, env=env)


async def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_health, config, *args)


SYNCED = re.compile(r"lookupd: routing snapshot synced \d+\.\d s ago \(database (un)?reachable\)")
STALE = re.compile(r"lookupd: routing snapshot 3\d\d\d s \(1h \dm\) stale \(last sync \d{4}-\d\d-\d\d"
                   r" \d\d:\d\d:\d\d UTC; database unreachable\) — answering from it")


async def test_mrod_health_reports_the_snapshot_and_still_does_while_the_database_is_down(
        tmp_path: Path, private_cluster: postgres.Cluster) -> None:
    server = private_cluster
    target = target_of(server, server.new_database())
    await seed_domains(target)
    config = _config_file(tmp_path, target)
    cfg = configmod.load(config, env={})
    path = syncstatus.path_for(cfg)
    assert path is not None

    missing = await _cli(config)          # lookupd has not run on this node yet
    assert missing.returncode == 0, missing.stderr
    assert missing.stdout.splitlines()[0] == f"lookupd: no sync status in {path} (is mrod serve running?)"

    daemon = Lookupd(cfg)
    await daemon.start()
    try:
        await until_status(path, lambda s: s.connected, "a sync")
        healthy = await _cli(config)
        assert healthy.returncode == 0, healthy.stderr
        first, *table = healthy.stdout.splitlines()
        assert SYNCED.fullmatch(first) and first.endswith("(database reachable)")
        assert any("primary" in line for line in table)
        as_json = await _cli(config, "--json")      # stdout stays the relays; the line goes to stderr
        assert as_json.returncode == 0 and [r["name"] for r in json.loads(as_json.stdout)] == ["primary"]
        assert SYNCED.fullmatch(as_json.stderr.strip())

        server.pause()
        await until_status(path, lambda s: not s.connected, "the database lost")
        down = await _cli(config)
        # This node's line first (from the file), then the usual one-line error about the database.
        assert down.returncode == 1
        assert SYNCED.fullmatch(down.stdout.strip()) and down.stdout.strip().endswith("(database unreachable)")
        [error] = down.stderr.strip().splitlines()
        assert error.startswith("mrod: error: database ") and target.url.split("@")[1] in error
    finally:
        await daemon.stop()
    stopped = await _cli(config)
    assert stopped.returncode == 1 and stopped.stdout.startswith("lookupd: stopped ")

    # An hour into the outage, lookupd restarted: it answers from its snapshot file, and says
    # how old it is. (The hour is the snapshot file's own record of its last sync, set back:
    # the state a node restarted an hour into an outage finds on its disk.)
    snapshot_file = snapshotfile.file_for(cfg)
    state: dict[str, Any] = json.loads(snapshot_file.read_text())
    state["synced_at"] = time.time() - 3600
    snapshot_file.write_text(json.dumps(state))
    restarted = Lookupd(cfg)
    started = time.time()
    await restarted.start()
    try:
        await until_status(path, lambda s: s.running and (s.written_at or 0) >= started, "the restarted lookupd")
        stale = await _cli(config)
        assert stale.returncode == 1
        assert STALE.fullmatch(stale.stdout.strip()), stale.stdout
        assert stale.stderr.startswith("mrod: error: database ")
        as_json = await _cli(config, "--json")
        assert as_json.returncode == 1 and as_json.stdout == ""
        assert STALE.fullmatch(as_json.stderr.splitlines()[0])
        # The database back: lookupd catches up, and health is fine again.
        server.resume()
        await until_status(path, lambda s: s.connected and s.verdict == "fresh", "the database back")
        back = await _cli(config)
        assert back.returncode == 0, back.stdout + back.stderr
        assert SYNCED.fullmatch(back.stdout.splitlines()[0])
    finally:
        await restarted.stop()
