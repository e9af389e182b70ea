"""A reading that failed, never happened or stopped is not a zero. A queue reading: with a real
``postqueue -j`` failing (a Postfix configuration directory without main.cf), the dashboard,
the domain page, the Queue page and the queue API say the figures are not known and why —
never "0 messages queued" or "Nothing was waiting" — until a reading works."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mrod.admin import words
from mrod.entities import domains, relays, tokens, users
from mrod.infra import db
from mrod.operations import queuestats
from mrod.operations.postqueue import QueueUnavailable
from mrod.operations.queueread import QueueReport
from tests.conftest import make_config
from tests.data import SYSTEM
from tests.harness import require_tool


@pytest.fixture
def panel_cfg(tmp_path: Path, database: dict[str, str]):
    require_tool("postqueue", "postfix")
    empty = tmp_path / "no-postfix-here"
    empty.mkdir()
    return make_config(tmp_path, admin={"bcrypt_rounds": 4}, postfix={"config_dir": str(empty)})


async def _pages(panel) -> dict[str, str]:
    pages = {}
    for path in ("/", "/domains/shop.example", "/queue"):
        status, pages[path] = await panel.get(path)
        assert status == 200, path
    return pages


async def test_a_failed_or_missing_reading_says_so_where_the_number_would_be(admin_panel, app_conn,
                                                                             panel_cfg) -> None:
    await relays.add(app_conn, SYSTEM, name="primary", host="127.0.0.1", port=9)
    shop = await domains.add(app_conn, SYSTEM, "shop.example", relay="primary")

    # Never read: not zero.
    pages = await _pages(admin_panel)
    for path, page in pages.items():
        assert "the queue has not been read yet on this node (mrod serve reads it every 1 minute)" in page, path
    assert "0</span> messages queued" not in pages["/"] and "mail queued: not known" in pages["/"]
    assert "Nothing was waiting" not in pages["/domains/shop.example"]
    assert "Nothing is waiting" not in pages["/queue"] and '<span class="count">not known</span>' in pages["/queue"]
    # Nor are primaries never probed "0 down", or domains never checked "0 DNS errors".
    assert ('<span class="num">?</span> primaries down: not known — 1 never probed on this node (primary)'
            in pages["/"])
    assert '<span class="num">?</span> DNS errors and warnings: not known — no domain has been checked yet' in pages["/"]
    assert "0</span> primaries down" not in pages["/"] and "0</span> DNS errors" not in pages["/"]

    # The reading mrod serve makes every minute fails, as it does on a host without main.cf.
    with pytest.raises(QueueUnavailable, match="main.cf"):
        await queuestats.refresh(panel_cfg)
    pages = await _pages(admin_panel)
    for path, page in pages.items():
        assert "the queue could not be read at " in page and "main.cf: No such file or directory" in page, path
        assert "it has never been read" in page, path
    assert "0</span> messages queued" not in pages["/"]
    assert "Nothing was waiting" not in pages["/domains/shop.example"]
    status, _ = await admin_panel.get("/api/v1/queue")     # a session is no API credential
    assert status == 401
    [reading] = (await (await admin_panel.client.get(
        "/api/v1/queue", headers={"Authorization": f"Bearer {await _token(app_conn)}"})).json())["readings"]
    assert reading["failed"] and "main.cf" in reading["error"] and reading["read_at"] is None

    # A reading that works (here: an empty queue) makes the zeros true again.
    await queuestats.write_stats(app_conn, QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={},
                                                        bad_lines=0, unknown_fields=[], read_at=db.now()),
                            panel_cfg.node.name)
    pages = await _pages(admin_panel)
    assert "0</span> messages queued" in pages["/"] and "mail queued: not known" not in pages["/"]
    assert "Nothing was waiting at the last reading" in pages["/domains/shop.example"]
    assert "Nothing is waiting." in pages["/queue"] and "not known" not in pages["/queue"]
    assert shop.id

    # Readings that stopped (mrod serve not running): the last one's figures are not current.
    old = db.stamp(datetime.now(timezone.utc) - timedelta(hours=2))
    await queuestats.write_stats(app_conn, QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={},
                                                        bad_lines=0, unknown_fields=[], read_at=old),
                            panel_cfg.node.name)
    pages = await _pages(admin_panel)
    for path, page in pages.items():
        assert f"the queue was last read at {words.when(old)}, 2 hours" in page, path
    assert "Nothing was waiting at the last reading" not in pages["/domains/shop.example"]


async def _token(conn) -> str:
    root = await users.get(conn, "root")
    secret, _ = await tokens.create(conn, SYSTEM, root.id, "queue test")
    return secret
