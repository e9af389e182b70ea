"""Every domain form of the panel, filled through the fields a person sees in real headless
Chromium and submitted, the effect checked through the CLI (issue 13.1, the domain side):
bulk add, bulk edit (ticked and "all matching"), CSV export and import with preview, recipients
add/remove, pause/quota/verify, queue flush from the domain page (real Postfix), BIND import
preview and run (real named). One test takes docs/screenshots/dashboard.png and domain.png.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.browser.test_panel import nav, sign_in, watch_console
from tests.harness.named import zone_text
from tests.data import seed_file_sync
from tests.postfix.conftest import payload

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "docs" / "screenshots"


def in_thread(function, *args, **kwargs):
    """Run asyncio code beside Playwright's sync API (which keeps an event loop in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def domains_of(server) -> dict[str, dict]:
    return {d["name"]: d for d in json.loads(server.cli("domain", "list", "--json"))}


def test_bulk_add_bulk_edit_and_csv_import(panel_server, chromium, tmp_path: Path) -> None:
    server = panel_server()
    server.cli("relay", "add", "old", "--host", "mx1.example.net")
    server.cli("relay", "add", "new", "--host", "mx2.example.net")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)

    # Bulk add, with a recipient policy and subdomains for every line.
    nav(page, "Domains").click()
    page.get_by_role("link", name="Bulk add").click()
    page.get_by_label("Domains, one a line").fill("b1.example\nb2.example\nb3.example new\nb4.example\n")
    page.get_by_label("Default relay").select_option("old")
    page.get_by_label("Recipients").select_option("listed")
    page.get_by_label("Relay their subdomains too").check()
    page.get_by_role("button", name="Add domains").click()
    assert page.get_by_role("status").first.inner_text() == "4 domain(s) added."
    added = domains_of(server)
    assert {n: (d["relay_name"], d["recipients"], d["include_subdomains"]) for n, d in added.items()} == {
        "b1.example": ("old", "listed", True), "b2.example": ("old", "listed", True),
        "b3.example": ("new", "listed", True), "b4.example": ("old", "listed", True)}

    # Bulk edit of the ticked domains.
    nav(page, "Domains").click()
    page.get_by_label("Select b1.example").check()
    page.get_by_label("Select b2.example").check()
    page.get_by_label("Set route").select_option("relay new")
    page.get_by_label("Set pause").select_option("paused (new mail is deferred)")
    page.get_by_label("Pause reason (with a pause)").fill("moving to the new primary")
    page.get_by_role("button", name="Apply to these domains").click()
    assert page.get_by_role("status").first.inner_text() == "2 domain(s) changed."
    state = domains_of(server)
    assert [state[f"b{i}.example"]["relay_name"] for i in range(1, 5)] == ["new", "new", "new", "old"]
    assert state["b2.example"]["paused"] and state["b2.example"]["pause_reason"] == "moving to the new primary"
    assert not state["b4.example"]["paused"]

    # Nothing chosen: a clear message, nothing changed.
    before = domains_of(server)
    page.get_by_label("Select b4.example").check()
    page.get_by_role("button", name="Apply to these domains").click()
    assert "Nothing was changed: nothing to change" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Select b4.example").is_checked()          # the selection is kept
    assert domains_of(server) == before

    # All matching a filter (the relay filter applies at once, by JavaScript).
    page.goto(server.url + "/domains")
    page.get_by_label("Relay", exact=True).select_option("new")
    page.wait_for_url("**relay=new**")
    page.get_by_label("All 3 domains matching this filter").check()
    page.get_by_label("Set state").select_option("disabled")
    page.get_by_label("Set recipient policy").select_option("accept_all")
    page.get_by_role("button", name="Apply to these domains").click()
    assert page.get_by_role("status").first.inner_text() == "3 domain(s) changed."
    assert "relay=new" in page.url
    state = domains_of(server)
    assert {n: (d["enabled"], d["recipients"]) for n, d in state.items()} == {
        "b1.example": (False, "accept_all"), "b2.example": (False, "accept_all"),
        "b3.example": (False, "accept_all"), "b4.example": (True, "listed")}

    # CSV export (a download), edited, imported from a file with a preview first.
    page.goto(server.url + "/domains")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_text()
    assert exported.splitlines()[0].startswith("name,relay,host,port")
    assert "b4.example,old,,,,,no,yes,yes,listed,no,,,,accept,inherit,,manual" in exported
    edited = exported.replace("b4.example,old,", "b4.example,new,") + \
        "c1.example,,mx9.example.net,2526,smtp,encrypt,no,yes,no,verify,no,,,,defer,,,manual,\n"
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("Or a CSV file").set_input_files(
        files=[{"name": "domains.csv", "mimeType": "text/csv", "buffer": edited.encode()}])
    page.get_by_role("button", name="Preview").click()
    assert page.get_by_role("heading", name="Preview — nothing is written yet").is_visible()
    assert page.locator("ul.added").inner_text() == "c1.example"
    assert page.locator("ul.changed li[data-domain='b4.example'] ul.diff").inner_text() == "relay: old → new"
    assert "c1.example" not in domains_of(server)
    page.get_by_role("button", name="Import these changes").click()
    assert page.get_by_role("status").first.inner_text() == "CSV imported: 1 domain(s) added, 1 changed, 3 unchanged."
    state = domains_of(server)
    assert state["b4.example"]["relay_name"] == "new"
    assert (state["c1.example"]["host"], state["c1.example"]["port"], state["c1.example"]["tls"],
            state["c1.example"]["verify_when_down"]) == ("mx9.example.net", 2526, "encrypt", "defer")

    # A refused row: every problem shown, nothing imported.
    before = domains_of(server)
    page.get_by_role("link", name="Import CSV").click() if page.get_by_role("link", name="Import CSV").count() \
        else page.goto(server.url + "/domains/import")
    page.get_by_label("CSV text").fill("name,relay,enabled\nd1.example,new,yes\nd2.example,nowhere,yes\n")
    page.get_by_role("button", name="Preview").click()
    assert "1 problem(s); nothing was imported." in page.get_by_role("alert").inner_text()
    assert "relay 'nowhere' does not exist" in page.locator("table.refused").inner_text()
    assert domains_of(server) == before
    assert problems == []


def test_recipients_and_pause_quota_verify(panel_server, chromium) -> None:
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    server.cli("domain", "add", "shop.example", "--relay", "primary")
    page = chromium.new_page()
    problems = watch_console(page)
    page.on("dialog", lambda dialog: dialog.accept())                  # the Remove button asks first
    sign_in(page, server.url, "admin", server.password)

    page.goto(server.url + "/domains/shop.example")
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Recipients").select_option("verify")
    page.get_by_label("Paused: defer its new mail (450) until unpaused").check()
    page.get_by_label("Pause reason").fill("mailbox migration")
    page.get_by_label("Queue quota, messages").fill("500")
    page.get_by_label("Queue quota, bytes").fill("0")
    page.get_by_label("Unknown addresses while the primary is down").select_option("defer")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").first.inner_text() == "Domain shop.example saved."
    shown = json.loads(server.cli("domain", "show", "shop.example", "--json"))["domain"]
    assert (shown["recipients"], shown["paused"], shown["pause_reason"], shown["quota_messages"],
            shown["quota_bytes"], shown["verify_when_down"]) == ("verify", True, "mailbox migration", 500, 0, "defer")
    assert "paused — new mail is deferred: mailbox migration" in page.locator("[data-setting=paused]").inner_text()

    # A bad quota: the error beside the field, nothing changed.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Queue quota, messages").fill("lots")
    page.get_by_role("button", name="Save").click()
    assert "whole number" in page.locator("#quota_messages-error").inner_text()
    assert json.loads(server.cli("domain", "show", "shop.example", "--json"))["domain"] == shown

    # Unpause, back to the default quota, listed recipients.
    page.goto(server.url + "/domains/shop.example/edit")
    page.get_by_label("Paused: defer its new mail (450) until unpaused").uncheck()
    page.get_by_label("Queue quota, messages").fill("")
    page.get_by_label("Recipients").select_option("listed")
    page.get_by_role("button", name="Save").click()
    shown = json.loads(server.cli("domain", "show", "shop.example", "--json"))["domain"]
    assert (shown["paused"], shown["pause_reason"], shown["quota_messages"], shown["recipients"]) == \
        (False, None, None, "listed")

    page.get_by_label("Add a recipient").fill("sales")
    page.get_by_role("button", name="Add", exact=True).click()
    assert page.get_by_role("status").first.inner_text() == "Recipient sales@shop.example added."
    page.get_by_label("Add a recipient").fill("@")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_label("Add a recipient").fill("someone@other.example")
    page.get_by_role("button", name="Add", exact=True).click()
    assert page.locator("#address-error").inner_text() == \
        "no domain here accepts mail for 'other.example'; add the domain first"
    assert server.cli("recipient", "list", "shop.example").split() == ["@shop.example", "sales@shop.example"]
    page.get_by_role("button", name="Remove sales@shop.example").click()
    assert page.get_by_role("status").first.inner_text() == "Recipient sales@shop.example removed."
    assert server.cli("recipient", "list", "shop.example").split() == ["@shop.example"]
    assert problems == []


@pytest.mark.postfix
def test_queue_read_and_flush_from_the_domain_page(panel_server, chromium, mrod_factory, postfix_factory,
                                                   smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)
    mrod = mrod_factory(start=False)
    in_thread(seed_file_sync, mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
              domains=[{"name": "example.com", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings={"queue_run_delay": "3600s", "minimal_backoff_time": "3600s",
                                                     "maximal_backoff_time": "3600s"})
    postfix.smtp(["joe@example.com"], payload("panel-flush", "joe@example.com"))
    postfix.wait_for_queue(lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    server = panel_server(database=mrod.db_path, sections={"postfix": {"config_dir": str(postfix.etc)}})
    server.add_user("ops", "ops password!", "queue", "domains")
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "ops", "ops password!")
    nav(page, "Queue").click()
    page.get_by_role("button", name="Read the queue now").click()
    assert page.get_by_role("status").first.inner_text().startswith("Queue read: 1 message(s)")
    page.goto(server.url + "/domains/example.com")
    assert page.locator("[data-queue=messages]").inner_text().startswith("1 (")
    primary.start()
    page.get_by_role("button", name="Flush example.com").click()
    assert page.get_by_role("status").first.inner_text() == \
        "Flush requested for example.com: Postfix delivers the waiting mail now."
    assert page.url == server.url + "/domains/example.com"
    [message] = primary.wait_for(1, 20)
    assert message.rcpt_tos == ("joe@example.com",)
    assert problems == []


@pytest.mark.bind
def test_bind_import_preview_and_run(panel_server, chromium, start_named) -> None:
    named = start_named({
        "one.example": zone_text("one.example", '@ TXT "mrodxmailrelay=primary"\n'),
        "two.example": zone_text("two.example", "@ MX 10 mx.two.example.\nmx A 192.0.2.1\n"),
        "three.example": zone_text("three.example")})
    server = panel_server(sections={"bind": {"named_conf": str(named.conf), "resolver": "127.0.0.1",
                                             "resolver_port": named.port}})
    server.cli("relay", "add", "primary", "--host", "mx1.example.net")
    page = chromium.new_page()
    problems = watch_console(page)
    page.on("dialog", lambda dialog: dialog.accept())                  # "Import from BIND now?"
    sign_in(page, server.url, "admin", server.password)
    nav(page, "BIND import").click()
    page.get_by_role("button", name="Preview").click()
    assert "nothing was written" in page.locator("main").inner_text()
    assert domains_of(server) == {}
    page.get_by_role("button", name="Import now").click()
    assert page.get_by_role("status").first.inner_text().startswith("Import run #1: 2 added")
    state = domains_of(server)
    assert {n: d["source"] for n, d in state.items()} == {"one.example": "bind", "two.example": "bind"}
    assert state["one.example"]["relay_name"] == "primary"
    # The dashboard says so, and links to the page that explains it.
    nav(page, "Dashboard").click()
    page.locator("[data-tile=bind]").click()
    page.wait_for_url(server.url + "/bind-import")
    assert problems == []


def test_dashboard_and_domain_page_screenshots(panel_server, chromium) -> None:
    """Readings as mrod serve stores them (DNS checks, queue, probes, a BIND run), then the
    pages an operator looks at first — the screenshots in docs/."""
    server = panel_server()
    server.cli("relay", "add", "primary", "--host", "mx1.example.net", "--tls", "encrypt")
    server.cli("relay", "add", "dc2", "--host", "192.0.2.25", "--port", "2525")
    lines = "".join(f"shop{i:02}.example{' dc2' if i % 4 == 0 else ''}\n" for i in range(30))
    server.cli("domain", "import", "-", "--relay", "primary", input=lines)
    server.cli("domain", "set", "shop01.example", "--pause", "mailbox migration")
    in_thread(asyncio.run, _readings(server.database, server.config_path))
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "admin", server.password)
    assert page.locator("[data-tile=down]").inner_text().endswith("primary down: dc2")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    page.locator("[data-tile=dns-error]").click()
    page.wait_for_url("**/dns?status=error")
    assert page.locator("[data-domain]").count() == 2
    page.locator("[data-domain='shop04.example'] a").click()
    assert page.get_by_role("heading", name="shop04.example").is_visible()
    assert "has no MX records" in page.locator("[data-why=dns]").inner_text()
    assert "dc2 is down" in page.locator("[data-why=primary]").inner_text()
    page.screenshot(path=str(SHOTS / "domain.png"), full_page=True)
    assert (SHOTS / "dashboard.png").stat().st_size > 10_000 and (SHOTS / "domain.png").stat().st_size > 10_000
    # On a phone-sized screen none of these pages is wider than the screen (tables scroll).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/", "/dns", "/dns?status=warning", "/domains", "/domains/shop04.example", "/domains/import"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert problems == []


async def _readings(path: Path, config_path: Path) -> None:
    from mrod.bindimport import runs
    from mrod.entities import domains
    from mrod.entities.audit import Actor
    from mrod.infra import config as configmod
    from mrod.infra import db
    from mrod.operations import checks, health, queueread, queuestats
    from mrod.operations.queueparse import DomainQueue

    system = Actor.system("test")
    async with db.opened(path) as conn:
        rows = {d.name: d for d in (await domains.search(conn, limit=None)).domains}
        results = []
        for name, d in rows.items():
            found = []
            if name in ("shop04.example", "shop09.example"):
                found = [checks.Finding("error", "no-mx", f"{name} has no MX records: senders deliver to its "
                                        "address, never here", f"add MX records: the primary with a low preference "
                                        f"(`{name}. MX 10 mail.{name}.`) and this host with a higher one")]
            elif name == "shop12.example":
                found = [checks.Finding("warning", "txt-mismatch", "the TXT record names relay 'dc3'",
                                        "run the BIND import, or correct the TXT record")]
            results.append(checks.DomainCheck(d.id, name, found, db.now()))
        cfg = configmod.load(config_path, env={})
        await checks.store(conn, results, cfg.node.name)
        report = queueread.QueueReport(domains={}, rows={}, messages=0, bytes=0, queues={}, bad_lines=0,
                                   unknown_fields=[], read_at=db.now())
        for name, count in (("shop04.example", 12), ("shop08.example", 3)):
            q = DomainQueue(name)
            q.messages, q.bytes, q.oldest = count, count * 5300, int(time.time()) - 5 * 3600 - count * 60
            q.last_reason = "connect to 192.0.2.25[192.0.2.25]:2525: Connection timed out"
            report.rows[rows[name].id] = q
        await queuestats.write_stats(conn, report, cfg.node.name)
        monitor = health.HealthMonitor(cfg)
        for relay, ok in ((rows["shop04.example"].relay_id, False), (rows["shop01.example"].relay_id, True)):
            name = "dc2" if not ok else "primary"
            for _ in range(cfg.health.down_after if not ok else 1):
                await monitor.record(conn, [({"id": relay, "name": name},
                                             health.Probe(ok, 12.5 if ok else None, True if ok else None,
                                                          "220 mx ESMTP" if ok else "Connection timed out"))])
        async with db.transaction(conn):
            await runs.record(conn, system, started_at=db.now(), finished_at=db.now(), duration_ms=840,
                              counts={"discovered": 31, "added": 30, "problems": 1}, messages=[])
