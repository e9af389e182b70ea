"""The queue message by message in the panel, in real Chromium against a real Postfix whose
primary is down: tick messages and press Hold / Release / Delete (with its confirmation step)
on the whole-queue page, a domains_own user's domain page that shows only their own messages,
and the domain form's queue lifetime filled and shown."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.browser.test_domain_forms import in_thread
from tests.browser.test_panel import sign_in, watch_console
from mrod.entities import domains, users
from mrod.infra import db
from tests.data import SYSTEM, seed_file_sync
from tests.harness import free_port
from tests.postfix.conftest import payload

pytestmark = [pytest.mark.browser, pytest.mark.postfix]
SLOW = {"queue_run_delay": "3600s", "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s"}


def queue_of(postfix) -> dict[str, tuple[str, str]]:
    """recipient -> (queue id, queue name)"""
    return {r["address"]: (e["queue_id"], e["queue_name"]) for e in postfix.queue() for r in e["recipients"]}


async def give(path, domain: str, user: str) -> None:
    async with db.opened(path) as conn:
        owner = await users.get(conn, user)
        await domains.update(conn, SYSTEM, domain, owner_id=owner.id)


@pytest.fixture
def setup(panel_server, mrod_factory, postfix_factory):
    mrod = mrod_factory(start=False)
    in_thread(seed_file_sync, mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": free_port()}],
              domains=[{"name": "mine.example", "relay": "primary"}, {"name": "theirs.example", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW)
    for rcpts in (["a@mine.example"], ["b@mine.example"], ["c@theirs.example"], ["d@mine.example", "e@theirs.example"]):
        postfix.smtp(rcpts, payload(rcpts[0], rcpts[0]))
    postfix.wait_for_queue(lambda q: len(q) == 4 and all(e["queue_name"] == "deferred" for e in q))
    server = panel_server(database=mrod.db_path, sections={"postfix": {"config_dir": str(postfix.etc)}})
    server.add_user("ops", "ops password!", "queue")
    server.add_user("owner", "owner password!", "domains_own")
    in_thread(asyncio.run, give(mrod.db_path, "mine.example", "owner"))
    return server, postfix


def test_tick_hold_release_and_delete_with_confirmation(setup, chromium) -> None:
    server, postfix = setup
    ids = queue_of(postfix)
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "ops", "ops password!")
    page.goto(server.url + "/queue")
    page.get_by_role("link", name="The messages, one by one").click()
    assert page.locator("[data-queue=total]").inner_text() == "4 matching"

    a, b = ids["a@mine.example"][0], ids["b@mine.example"][0]
    page.get_by_label(f"choose {a}").check()
    page.get_by_label(f"choose {b}").check()
    page.get_by_role("button", name="Hold chosen").click()
    assert page.get_by_role("status").first.inner_text() == "hold: Postfix acted on 2 of 2 message(s)."
    assert {queue_of(postfix)[r][1] for r in ("a@mine.example", "b@mine.example")} == {"hold"}

    page.get_by_label("Queue", exact=True).select_option("hold")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("[data-queue=total]").inner_text() == "2 matching"
    page.get_by_label(f"choose {a}").check()
    page.get_by_role("button", name="Release chosen").click()
    assert page.get_by_role("status").first.inner_text() == "release: Postfix acted on 1 of 1 message(s)."
    assert "queue=hold" in page.url                                 # back on the filtered page
    postfix.wait_for_queue(lambda q: {e["queue_id"]: e["queue_name"] for e in q}.get(a) == "deferred")

    # Delete: a confirmation step; Cancel keeps the message, Delete removes it.
    page.get_by_label(f"choose {b}").check()
    page.get_by_role("button", name="Delete chosen").click()
    assert "will be deleted" in page.locator("main").inner_text()
    page.get_by_role("link", name="Cancel").click()
    assert b in {e["queue_id"] for e in postfix.queue()}
    page.get_by_label(f"choose {b}").check()
    page.get_by_role("button", name="Delete chosen").click()
    page.get_by_role("button", name="Delete").click()
    assert page.get_by_role("status").first.inner_text() == "delete: Postfix acted on 1 of 1 message(s)."
    assert b not in {e["queue_id"] for e in postfix.queue()}
    assert problems == []


def test_a_domains_own_user_sees_only_their_messages_and_sets_retention(setup, chromium) -> None:
    server, postfix = setup
    ids = queue_of(postfix)
    page = chromium.new_page()
    problems = watch_console(page)
    sign_in(page, server.url, "owner", "owner password!")
    page.goto(server.url + "/domains/mine.example")
    page.get_by_role("link", name="The messages, one by one").click()
    shown = set(page.locator("tr[data-queue-id]").evaluate_all("rows => rows.map(r => r.dataset.queueId)"))
    # Theirs and the message that also goes to theirs.example are not shown.
    assert shown == {ids["a@mine.example"][0], ids["b@mine.example"][0]}
    assert page.goto(server.url + "/domains/theirs.example/queue").status == 403
    assert page.goto(server.url + "/queue/messages").status == 403
    # An id that is not theirs, posted by hand, is refused and nothing is held.
    page.goto(server.url + "/domains/mine.example/queue")
    page.locator("input[name=id]").first.evaluate(
        "(box, id) => { box.value = id; box.checked = true; }", ids["c@theirs.example"][0])
    page.get_by_role("button", name="Hold chosen").click()
    assert "not queued, or not yours" in page.get_by_role("alert").inner_text()
    assert queue_of(postfix)["c@theirs.example"][1] == "deferred"

    # Retention on the domain form: filled, saved, shown; a bad value refused beside the field.
    page.goto(server.url + "/domains/mine.example/edit")
    page.get_by_label("Queue lifetime").fill("soon")
    page.get_by_role("button", name="Save").click()
    assert "not a duration" in page.locator("#queue_lifetime-error").inner_text()
    page.get_by_label("Queue lifetime").fill("3d")
    page.get_by_role("button", name="Save").click()
    assert page.locator("[data-setting=queue-lifetime]").inner_text().startswith("3d")
    assert json.loads(server.cli("domain", "show", "mine.example", "--json"))["domain"]["queue_lifetime"] == 3 * 86400
    assert problems == []
