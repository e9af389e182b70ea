"""How values read on a page: one date format, durations and booleans in words, texts cut at a
word — the filters, and the pages that use them."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from mrod.admin import words
from mrod.entities import domains, relays, throttle
from mrod.entities.audit import Actor
from mrod.operations import health

SYSTEM = Actor.system("test")
ONE_FORMAT = re.compile(r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)">(.*?)</time>')


@pytest.mark.parametrize(("value", "shown"), [
    ("2026-12-02T04:37:54Z", "2026-12-02 04:37 UTC"), (datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc),
                                                       "2026-01-02 03:04 UTC"),
    (None, "—"), ("", "—"), ("not a date", "not a date")])
def test_when(value, shown) -> None:
    assert words.when(value) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (168 * 3600.0, "7 days"), (604800, "7 days"), (5400, "1 hour 30 minutes"), (3600, "1 hour"), (60.0, "1 minute"),
    (45, "45 seconds"), (90061, "1 day 1 hour"), (0, "0 seconds"), (0.4, "0 seconds"), ("x", "x")])
def test_duration(seconds, shown) -> None:
    assert words.duration(seconds) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (True, "yes"), (False, "no"), (None, "—"), ("", "—"), (3.0, "3"), (2.5, "2.5"), (["a", True], "a, yes"),
    ("listed", "listed"), (0, "0"), ("2026-12-02T05:07:54Z", "2026-12-02 05:07 UTC")])
def test_plain(value, shown) -> None:
    assert words.plain(value) == shown


@pytest.mark.parametrize(("text", "limit", "shown"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36", 60,
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML…"),
    ("short agent", 60, "short agent"), ("x" * 100, 10, "x" * 9 + "…"), (None, 10, "")])
def test_cut_never_mid_word(text, limit, shown) -> None:
    assert words.cut(text, limit) == shown
    assert len(words.cut(text, limit)) <= limit


@pytest.mark.both_engines
async def test_pages_show_one_date_format_and_no_python_values(admin_panel, app_conn, panel_cfg) -> None:
    relay = await relays.add(app_conn, SYSTEM, name="primary", host="mx1.example.net")
    # A probe, so the Queue page's Primaries table has a "since" and a "last probe" to show.
    await health.HealthMonitor(panel_cfg).record(app_conn, [({"id": relay.id, "name": "primary"},
                                                              health.Probe(True, 12.0, True, "220 mx ESMTP"))])
    await domains.add(app_conn, SYSTEM, "shop.example", relay="primary")
    await domains.update(app_conn, SYSTEM, "shop.example", enabled=False, include_subdomains=True)
    rules = throttle.Rules.from_config(type("A", (), {"login_window_minutes": 5, "login_max_failures_ip": 1,
                                                      "login_max_failures_user": 1, "login_block_minutes": 5})())
    await throttle.failed(app_conn, rules, "192.0.2.1", "someone")
    await admin_panel.post("/profile/tokens", {"token_name": "script"})
    shown = 0
    for path in ("/", "/logs", "/profile", "/blocklist", "/relays", "/domains", "/domains/shop.example",
                 "/bind-import", "/queue"):
        status, page = await admin_panel.get(path)
        assert status == 200, path
        visible = re.sub(r"<[^>]*>", " ", page)
        assert not re.search(r"\b(True|False|None)\b", visible), path
        assert not re.search(r"\d\.0 (hours|minutes|seconds)", visible), path
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d", visible), f"{path}: a raw timestamp is shown"
        for instant, text in ONE_FORMAT.findall(page):
            assert text == f"{instant[:10]} {instant[11:16]} UTC", path
            shown += 1
    assert shown >= 6
    logs = (await admin_panel.get("/logs?entity=domain&action=update"))[1]
    assert "<del>yes</del> → <ins>no</ins>" in logs
    assert "<del>no</del> → <ins>yes</ins>" in logs
