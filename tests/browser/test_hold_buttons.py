"""The domain page's Hold and Release buttons, clicked in real Chromium, acting on a real
Postfix's queue; the relay page's outage history (issue 21.4 and 21.2, the panel side)."""

from __future__ import annotations

import pytest

from tests.browser.test_domain_forms import in_thread
from tests.browser.test_panel import sign_in, watch_console
from tests.data import seed_file_sync
from tests.postfix.conftest import payload

pytestmark = [pytest.mark.browser, pytest.mark.postfix]

SLOW = {"queue_run_delay": "3600s", "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s"}


def test_hold_and_release_a_domain_from_its_page(panel_server, chromium, mrod_factory, postfix_factory,
                                                 smtp_sink_factory) -> None:
    primary = smtp_sink_factory("primary", start=False)
    mrod = mrod_factory(start=False)
    in_thread(seed_file_sync, mrod.db_path, relays=[{"name": "primary", "host": "127.0.0.1", "port": primary.port}],
              domains=[{"name": "example.com", "relay": "primary"}])
    mrod.start()
    postfix = postfix_factory(mrod.config, settings=SLOW)
    postfix.smtp(["joe@example.com"], payload("panel-hold", "joe@example.com"))
    postfix.wait_for_queue(lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    server = panel_server(database=mrod.db_path, sections={"postfix": {"config_dir": str(postfix.etc)}})
    server.add_user("ops", "ops password!", "queue", "domains", "relay")
    server.add_user("viewer", "viewer password!", "domains")
    page = chromium.new_page()
    problems = watch_console(page)

    sign_in(page, server.url, "viewer", "viewer password!")          # no queue permission: no buttons
    page.goto(server.url + "/domains/example.com")
    assert page.locator("[data-hold]").get_attribute("data-hold") == "none"
    assert page.get_by_role("button", name="Hold example.com").count() == 0
    page.context.clear_cookies()

    sign_in(page, server.url, "ops", "ops password!")
    page.goto(server.url + "/domains/example.com")
    page.get_by_role("button", name="Hold example.com").click()
    assert page.get_by_role("status").first.inner_text().startswith("example.com is held")
    assert "1 message(s) put on hold" in page.get_by_role("status").first.inner_text()
    assert page.locator("[data-hold]").get_attribute("data-hold") == "manual"
    postfix.wait_for_queue(lambda q: len(q) == 1 and q[0]["queue_name"] == "hold")
    primary.start()
    postfix.flush()
    assert postfix.queue()[0]["queue_name"] == "hold" and primary.messages == []

    page.get_by_role("button", name="Release example.com").click()
    assert page.get_by_role("status").first.inner_text().startswith("example.com released")
    assert page.locator("[data-hold]").get_attribute("data-hold") == "none"
    [message] = primary.wait_for(1, 20)
    assert message.rcpt_tos == ("joe@example.com",)
    assert "Refused by the primary after this backup accepted it: 0" in page.locator("main").inner_text()

    page.get_by_role("link", name="Relays").first.click()
    page.get_by_role("link", name="primary").first.click()
    assert "No outage recorded." in page.locator("[data-section=outages]").inner_text()
    assert "100.00 % over 7 days" in page.locator("[data-outages=availability]").inner_text()
    assert problems == []
