"""Every node's lookupd sync status in the shared database (issue 11 point 3, migration 0009):
each node's row written by its own node status job from its lookupd's file, read back for
`mrod health --all-nodes` and the panel, this node's taken live from its file; on both engines."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from mrod.cli import main
from mrod.infra import config as configmod
from mrod.infra.config import Config
from mrod.operations import nodereports, servejobs, syncstatus
from tests.conftest import make_config

NOW = 1_800_000_000.0


def _node(cfg: Config, name: str) -> Config:
    return make_config(Path(cfg.base_dir), node={"name": name})


async def test_each_node_keeps_one_row(conn: Any) -> None:
    await nodereports.upsert(conn, "mx-b", NOW - 312, False, reported_at=NOW - 300)
    await nodereports.upsert(conn, "mx-a", None, False, reported_at=NOW - 20)
    await nodereports.upsert(conn, "mx-a", NOW - 3.4, True, reported_at=NOW - 2)      # replaces mx-a's
    assert await nodereports.rows(conn) == [
        {"node": "mx-a", "synced_at": NOW - 4, "connected": True, "reported_at": NOW - 2},   # to the second, down
        {"node": "mx-b", "synced_at": NOW - 312, "connected": False, "reported_at": NOW - 300}]


async def test_a_stored_time_that_is_not_a_stamp_reads_as_unknown(conn: Any) -> None:
    from mrod.infra import db

    async with db.transaction(conn):
        await conn.execute("INSERT INTO node_status (node, lookupd_synced_at, lookupd_connected, reported_at)"
                           " VALUES ('odd', 'yesterday', 1, '')")
    [row] = await nodereports.rows(conn)
    assert (row["synced_at"], row["reported_at"]) == (None, None)
    [shown] = nodereports.view([row], "mx-a", None, now=NOW)
    assert shown.stale and shown.age_text() == "never"


async def test_the_job_copies_this_nodes_sync_file_into_its_row(cfg: Config, conn: Any) -> None:
    mine = _node(cfg, "mx-a")
    path = syncstatus.path_for(mine)
    if path is None:      # SQLite: one node, no snapshot to age, no job, nothing written
        assert await nodereports.report(mine) is None and await nodereports.rows(conn) == []
        assert "nodestatus" not in [j.name for j in servejobs.jobs(mine)]
        return
    assert "nodestatus" in [j.name for j in servejobs.jobs(mine)]
    assert (await nodereports.report(mine) or pytest.fail()).verdict == "missing"     # lookupd not run yet
    [row] = await nodereports.rows(conn)
    assert (row["node"], row["synced_at"], row["connected"]) == ("mx-a", None, False)
    synced = time.time() - 5
    path.parent.mkdir(parents=True, exist_ok=True)       # the node's state directory
    syncstatus.write(path, node="mx-a", database="db", synced_at=synced, connected=True, domains=2)
    await nodereports.report(mine)
    [row] = await nodereports.rows(conn)
    assert (row["synced_at"], row["connected"]) == (float(int(synced)), True)
    assert time.time() - row["reported_at"] < 5
    # lookupd stopped: its last word says nothing about the database now.
    syncstatus.write(path, node="mx-a", database="db", synced_at=synced, connected=True, domains=2, running=False)
    await nodereports.report(mine)
    assert [(r["synced_at"], r["connected"]) for r in await nodereports.rows(conn)] == [(float(int(synced)), False)]


def _status(tmp_path: Path, synced_ago: float | None, *, connected: bool = True, running: bool = True,
            written_ago: float = 1.0) -> syncstatus.SyncStatus:
    path = tmp_path / syncstatus.FILE
    syncstatus.write(path, node="mx-a", database="db", synced_at=None if synced_ago is None else NOW - synced_ago,
                     connected=connected, domains=1, running=running, now=NOW - written_ago)
    return syncstatus.read(path, now=NOW)


STORED = [
    {"node": "mx-a", "synced_at": NOW - 500, "connected": False, "reported_at": NOW - 490},
    {"node": "mx-b", "synced_at": NOW - 4, "connected": True, "reported_at": NOW - 3},
    {"node": "mx-c", "synced_at": NOW - 312, "connected": False, "reported_at": NOW - 5},
    {"node": "mx-d", "synced_at": NOW - 700, "connected": True, "reported_at": NOW - 695},
]


def test_every_node_is_judged_and_this_one_read_live(tmp_path: Path) -> None:
    shown = nodereports.view(STORED, "mx-a", _status(tmp_path, 1.5), now=NOW)
    assert [(n.node, n.live, n.stale) for n in shown] == [
        ("mx-a", True, False), ("mx-b", False, False), ("mx-c", False, True), ("mx-d", False, True)]
    a, b, c, d = shown
    assert (a.age_text(), a.connected, a.reported_at) == ("1.5 s ago", True, NOW - 1.0)    # not the stored 500 s
    assert (b.age_text(), b.reason) == ("4.0 s ago", "")
    assert c.warning() == ("node mx-c: lookupd's routing snapshot is 312 s stale (database unreachable):"
                           " it answers Postfix from it")
    assert d.reason == "is 700 s stale (node not reporting since 2027-01-15 07:48:25 UTC)"
    assert c.as_dict()["stale"] is True and c.as_dict()["age"] == 312


@pytest.mark.parametrize("live, stale, reason", [
    (None, True, "is 500 s stale (node not reporting since 2027-01-15 07:51:50 UTC)"),   # no file: the row
    ("missing", True, "is 500 s stale (node not reporting since 2027-01-15 07:51:50 UTC)"),
    ("stopped", True, "is not being kept: lookupd is not running or hung"),
    ("hung", True, "is not being kept: lookupd is not running or hung"),
    ("never", True, "was never synced: lookupd answers TEMP"),
    ("outage", True, "is 40 s stale (database unreachable): it answers Postfix from it"),
])
def test_this_nodes_own_file_decides_for_it(tmp_path: Path, live: str | None, stale: bool, reason: str) -> None:
    status = {
        None: None,
        "missing": syncstatus.read(tmp_path / "absent.json", now=NOW),
        "stopped": _status(tmp_path, 2, running=False),
        "hung": _status(tmp_path, 95, written_ago=90),
        "never": _status(tmp_path, None, connected=False),
        "outage": _status(tmp_path, 40, connected=False),
    }[live]
    [a] = nodereports.view(STORED[:1], "mx-a", status, now=NOW)
    assert (a.stale, a.reason) == (stale, reason)


# -- mrod health --all-nodes ------------------------------------------------------------------------


def _config_file(cfg: Config, name: str) -> Path:
    path = Path(cfg.base_dir) / f"{name}.toml"
    where = (f'url = "{cfg.database.url}"\npassword_file = "{cfg.database.password_file}"\n' if cfg.database.url
             else "")
    path.write_text(f'[database]\npath = "{cfg.database.path}"\n{where}'
                    f'[lookupd]\nsocketmap = "127.0.0.1:0"\npolicy = ""\n[node]\nname = "{name}"\n')
    return path


def test_health_all_nodes_lists_every_nodes_lookupd(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    from mrod.infra import db

    async def stored(stale_b: bool) -> None:
        async with db.opened(cfg.database) as conn:
            now = time.time()
            await nodereports.upsert(conn, "mx-a", now - 600, False, reported_at=now - 590)
            await nodereports.upsert(conn, "mx-b", now - (400 if stale_b else 2), not stale_b, reported_at=now - 1)

    def mrod(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", str(_config_file(cfg, "mx-a")), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    asyncio.run(stored(stale_b=False))
    here = syncstatus.path_for(configmod.load(_config_file(cfg, "mx-a"), env={}))
    if here is not None:       # PostgreSQL: this node's lookupd file says it is fresh
        here.parent.mkdir(parents=True, exist_ok=True)
        syncstatus.write(here, node="mx-a", database="db", synced_at=time.time() - 1, connected=True, domains=0)
    code, out, err = mrod("health", "--all-nodes")
    rows = [line.split() for line in out.splitlines() if line.startswith(("mx-a ", "mx-b "))]
    if here is not None:
        assert code == 0 and out.startswith("lookupd: routing snapshot synced ")
        assert [r[0] for r in rows] == ["mx-a", "mx-b"] and rows[0][-2:] == ["live", "ok"] and rows[1][-1] == "ok"
    else:                      # SQLite: the stored rows only (mx-a's is old)
        assert code == 1 and "lookupd:" not in out.splitlines()[0]
        assert [(r[0], r[-1]) for r in rows] == [("mx-a", "STALE"), ("mx-b", "ok")]
        assert re.search(r"^node mx-a: lookupd's routing snapshot is 60\d s stale \(node not reporting since ", out, re.M)
    assert "NODE  LOOKUPD LAST SYNC  DATABASE" in out and err == ""
    asyncio.run(stored(stale_b=True))
    code, out, err = mrod("health", "--all-nodes", "--json")
    assert code == 1 and isinstance(json.loads(out), list)          # stdout stays the relays
    assert re.search(r"^node mx-b: lookupd's routing snapshot is 40\d s stale \(database unreachable\)", err, re.M)
    code, out, _ = mrod("health")               # this node only: the others' rows are not its business
    assert "mx-b" not in out


# -- the panel's dashboard --------------------------------------------------------------------------


async def test_the_dashboard_shows_the_nodes_to_queue_holders_only(cfg: Config, conn: Any, aiohttp_client: Any) -> None:
    from mrod.admin.app import create_app
    from mrod.entities import users
    from tests.admin.conftest import PASSWORD, Panel
    from tests.data import SYSTEM

    here = make_config(Path(cfg.base_dir), node={"name": "mx-a"}, admin={"bcrypt_rounds": 4})
    await users.add(conn, SYSTEM, "ops", PASSWORD, perms=("queue",), rounds=4)
    await users.add(conn, SYSTEM, "editor", PASSWORD, perms=("domains", "relay"), rounds=4)
    ops = Panel(await aiohttp_client(create_app(here)))
    editor = Panel(await aiohttp_client(ops.client.server))
    assert (await ops.login("ops")).status == 303 and (await editor.login("editor")).status == 303
    status, page = await ops.get("/")
    assert status == 200 and 'id="nodes-heading"' not in page       # no node has reported: nothing to show
    await nodereports.upsert(conn, "mx-b", time.time() - 312, False)
    await nodereports.upsert(conn, "mx-c", time.time() - 3, True)
    status, page = await ops.get("/")
    assert status == 200 and 'id="nodes-heading"' in page
    assert '<tr data-node="mx-b" class="stale">' in page and '<tr data-node="mx-c">' in page
    assert re.search(r'id="stale-nodes">\s*<p>Node <strong>mx-b</strong>: lookupd\'s routing snapshot is 31\d s'
                     r" stale \(database unreachable\)", page)
    assert "<strong>mx-c</strong>" not in page
    status, page = await editor.get("/")
    assert status == 200 and 'id="nodes-heading"' not in page and "mx-b" not in page
