"""The panel's BIND import page: Preview, Import now, run history; permission ``domains``.
The real app (create_app) on a test server, a real named for the zones and routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrod.admin.app import create_app
from mrod.infra import db
from mrod.entities import domains, relays, users
from mrod.bindimport import runs
from tests.data import SYSTEM
from tests.admin.conftest import PASSWORD, Panel
from tests.conftest import make_config
from tests.harness.named import Named

pytestmark = pytest.mark.bind

NAMED_ZONES = {
    "one.example": '@ TXT "mrodxmailrelay=primary"\n',
    "two.example": "@ MX 10 mx.two.example.\nmx A 192.0.2.1\n",
    "three.example": "",
}


@pytest.fixture
def cfg(tmp_path: Path, named: Named):
    return make_config(tmp_path, admin={"bcrypt_rounds": 4}, bind={
        "named_conf": str(named.conf), "resolver": "127.0.0.1", "resolver_port": named.port})


@pytest.fixture
async def conn(cfg):
    async with db.opened(cfg.database, create=True) as connection:
        await relays.add(connection, SYSTEM, name="primary", host="mx1.example.net")
        for name, perms in (("alice", ("domains",)), ("olga", ("domains_own",)), ("leo", ("logs",))):
            await users.add(connection, SYSTEM, name, PASSWORD, perms=perms, rounds=4)
        yield connection


@pytest.fixture
async def panel(aiohttp_client, cfg, conn):
    async def signed_in(name: str) -> Panel:
        p = Panel(await aiohttp_client(create_app(cfg)))
        assert (await p.login(name)).status == 303
        return p
    return signed_in


async def test_page_needs_the_domains_permission(panel) -> None:
    for name in ("olga", "leo"):
        p = await panel(name)
        assert (await p.get("/bind-import"))[0] == 403
        assert (await p.post("/bind-import/run"))[0] == 403
        assert "BIND import" not in (await p.get("/"))[1]
    alice = await panel("alice")
    status, page = await alice.get("/bind-import")
    assert status == 200
    assert "No import has run yet." in page
    assert "dns-txt → dns-dom" in page
    assert 'href="/bind-import"' in (await alice.get("/"))[1]


async def test_preview_shows_the_plan_and_writes_nothing(panel, conn) -> None:
    alice = await panel("alice")
    status, page, _ = await alice.post("/bind-import/preview")
    assert status == 200
    assert "nothing was written" in page
    assert '<td data-label="Action">add</td><td data-label="Domain">one.example</td>' in page
    assert '<td data-label="Action">add</td><td data-label="Domain">two.example</td>' in page
    assert "<strong>three.example</strong>: not imported: no usable route" in page
    assert (await domains.count(conn))["total"] == 0
    assert await runs.recent(conn) == []


async def test_import_now_runs_records_and_redirects(panel, conn) -> None:
    alice = await panel("alice")
    status, _, response = await alice.post("/bind-import/run")
    assert status == 303
    assert response.headers["Location"] == "/bind-import"
    status, page = await alice.get("/bind-import")
    assert "Import run #1: 2 added, 0 updated, 0 disabled, 0 deleted, 1 problems." in page
    assert '<td data-label="Run">#1</td>' in page
    assert "panel:alice@127.0.0.1" in page
    [run] = await runs.recent(conn)
    assert (run.actor, run.origin, run.remote, run.counts["added"]) == ("bind-import", "bind", "panel:alice@127.0.0.1", 2)
    assert {d.name for d in (await domains.search(conn, limit=None)).domains} == {"one.example", "two.example"}


async def test_without_csrf_token_nothing_runs(panel, conn) -> None:
    alice = await panel("alice")
    status, _, _ = await alice.post("/bind-import/run", csrf=False)
    assert status == 403
    assert await runs.recent(conn) == []


async def test_a_failing_run_is_shown_and_changes_nothing(panel, conn, named: Named) -> None:
    named.conf.write_text(named.conf.read_text() + "zone \"x.example\" { type primary file \"x\"; };\n")
    alice = await panel("alice")
    status, page, _ = await alice.post("/bind-import/preview")
    assert status == 422
    assert f"{named.conf}:" in page
    assert "missing &#39;;&#39; before &#39;file&#39;" in page
    status, _, _ = await alice.post("/bind-import/run")
    assert status == 303
    page = (await alice.get("/bind-import"))[1]
    assert "Import failed, nothing was changed:" in page
    assert "<strong>failed</strong>" in page
    assert (await domains.count(conn))["total"] == 0
