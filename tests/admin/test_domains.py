"""Domain pages through the real app: list, filters, sorting, pages; add / edit / delete;
validation with errors beside fields and nothing written; bulk add; what Postfix is told;
recipients; the domains_own view; hostile text escaped."""

from __future__ import annotations

import html
import re

import pytest

from mrod.entities import audit, domainimport, domains, recipients, relays
from mrod.answers import routing
from mrod.answers.routestore import RouteStore
from tests.data import SYSTEM

HOSTILE = "<script>alert(\"x\")</script>'\""


def names_in(page: str) -> list[str]:
    return re.findall(r'<a href="/domains/([a-z0-9.-]+)">', page)


async def _relay(conn, name="primary", host="mx1.example.net", **kw):
    return await relays.add(conn, SYSTEM, name=name, host=host, **kw)


@pytest.mark.both_engines
async def test_list_filters_sorts_and_pages(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    await _relay(app_conn, "backup", "mx2.example.net")
    lines = [f"d{i:03}.example primary" for i in range(120)] + ["zz.example backup"]
    await domainimport.bulk_add(app_conn, SYSTEM, lines)
    await domains.update(app_conn, SYSTEM, "d005.example", enabled=False, recipients="listed")
    status, page = await admin_panel.get("/domains")
    assert status == 200
    assert ">121<" in page.replace(" ", "")
    assert names_in(page)[:3] == ["d000.example", "d001.example", "d002.example"]
    assert len(names_in(page)) == 50
    assert "Page 1 of 3" in page
    status, page = await admin_panel.get("/domains?page=3")
    assert names_in(page) == [f"d{i:03}.example" for i in range(100, 120)] + ["zz.example"]
    status, page = await admin_panel.get("/domains?page=99")          # past the end: the last page
    assert status == 200
    assert "Page 3 of 3" in page
    assert names_in((await admin_panel.get("/domains?sort=name&dir=desc"))[1])[0] == "zz.example"
    assert names_in((await admin_panel.get("/domains?relay=backup"))[1]) == ["zz.example"]
    assert names_in((await admin_panel.get("/domains?enabled=no"))[1]) == ["d005.example"]
    assert names_in((await admin_panel.get("/domains?recipients=listed"))[1]) == ["d005.example"]
    assert names_in((await admin_panel.get("/domains?q=d11"))[1]) == [f"d11{i}.example" for i in range(10)]
    assert names_in((await admin_panel.get("/domains?source=bind"))[1]) == []
    page = (await admin_panel.get("/domains?sort=relay&per_page=25"))[1]
    assert names_in(page)[0] == "zz.example"
    assert len(names_in(page)) == 25     # backup < primary
    # Nonsense in the query string is ignored, never an error.
    for query in ("sort=evil;drop", "page=-3", "per_page=999999", "enabled=maybe", "source=%00", "relay=" + "x" * 500):
        assert (await admin_panel.get(f"/domains?{query}"))[0] == 200


@pytest.mark.both_engines
async def test_add_edit_delete_through_forms(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    status, _, response = await admin_panel.post("/domains/new", {
        "name": "Bücher.Example", "route": "relay", "relay": "primary", "recipients": "listed", "enabled": "1"})
    assert status == 303
    assert response.headers["Location"] == "/domains/xn--bcher-kva.example"
    status, page = await admin_panel.get("/domains/xn--bcher-kva.example")
    assert "bücher.example" in page
    assert "Domain bücher.example added." in page
    domain = await domains.get(app_conn, "bücher.example")
    assert (domain.relay_name, domain.recipients, domain.enabled, domain.source) == ("primary", "listed", True, "manual")
    # Edit: a host override, no longer enabled.
    status, _, _ = await admin_panel.post("/domains/xn--bcher-kva.example/edit", {
        "route": "host", "host": "mx9.example.net", "port": "2525", "protocol": "smtps", "tls": "encrypt",
        "recipients": "accept_all", "include_subdomains": "1"})
    assert status == 303
    domain = await domains.get(app_conn, "xn--bcher-kva.example")
    assert (domain.relay_id, domain.host, domain.port, domain.protocol, domain.tls, domain.enabled,
            domain.include_subdomains) == (None, "mx9.example.net", 2525, "smtps", "encrypt", False, True)
    [change] = await audit.entries(app_conn, entity="domain", action="update")
    assert change.actor == "root"
    assert change.origin == "panel"
    assert change.remote == "127.0.0.1"
    assert change.before is not None
    assert change.after is not None
    assert change.before["host"] is None
    assert change.after["host"] == "mx9.example.net"
    # Delete asks first (a page that works without JavaScript), then deletes.
    status, page, _ = await admin_panel.post("/domains/xn--bcher-kva.example/delete", {})
    assert status == 200
    assert "Delete bücher.example?" in page
    assert await domains.count(app_conn) == {"total": 1, "enabled": 0, "disabled": 1}
    status, _, _ = await admin_panel.post("/domains/xn--bcher-kva.example/delete", {"confirm": "yes"})
    assert status == 303
    assert (await domains.count(app_conn))["total"] == 0


@pytest.mark.both_engines
async def test_bad_input_shows_errors_beside_fields_and_writes_nothing(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    before = await audit.count(app_conn)
    cases = [
        ({"name": "not a domain", "route": "relay", "relay": "primary"}, "name", "white space"),
        ({"name": "-bad-.example", "route": "relay", "relay": "primary"}, "name", "inner hyphens"),
        ({"name": "a" * 64 + ".example", "route": "relay", "relay": "primary"}, "name", "longer than 63"),
        ({"name": "ok.example", "route": "relay", "relay": ""}, "relay", "choose a relay"),
        ({"name": "ok.example", "route": "relay", "relay": "nosuch"}, "relay", "does not exist"),
        ({"name": "ok.example", "route": "host", "host": "bad host!", "port": "25"}, "host", "white space"),
        ({"name": "ok.example", "route": "host", "host": "mx.example.net", "port": "70000"}, "port", "out of range"),
        ({"name": "ok.example", "route": "host", "host": "mx.example.net", "port": "x"}, "port", "not a number"),
        ({"name": "ok.example", "route": "host", "host": "mx.example.net", "protocol": "gopher"}, "protocol", "not one of"),
        ({"name": "ok.example", "route": "relay", "relay": "primary", "recipients": "some"}, "recipients", "not one of"),
        ({"name": "ok.example", "route": "teleport"}, "route", "choose a relay"),
    ]
    for form, field, text in cases:
        status, page, _ = await admin_panel.post("/domains/new", form)
        assert status == 400, form
        found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
        assert found, (form, page[page.find("field-error") - 200:][:600])
        assert text in html.unescape(found.group(1)), (form, page[page.find("field-error") - 200:][:600])
        assert re.search(rf'aria-describedby="[^"]*{field}-error', page) or field == "route"
    await domains.add(app_conn, SYSTEM, "taken.example", relay="primary")
    status, page, _ = await admin_panel.post("/domains/new", {"name": "taken.example", "route": "relay", "relay": "primary"})
    assert status == 400
    assert "already exists" in page
    assert await audit.count(app_conn) == before + 1          # only the add made directly above
    assert (await domains.count(app_conn))["total"] == 1
    # A bad edit changes nothing either.
    status, page, _ = await admin_panel.post("/domains/taken.example/edit", {"route": "host", "host": "", "port": "25"})
    assert status == 400
    assert (await domains.get(app_conn, "taken.example")).relay_name == "primary"


async def test_bulk_add_reports_what_was_refused(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    await domains.add(app_conn, SYSTEM, "old.example", relay="primary")
    text = "\n".join(["good1.example", "good2.example primary", "bad_name.example", "old.example",
                      "x.example nosuch", "# a comment", "", "good1.example", HOSTILE])
    status, page, _ = await admin_panel.post("/domains/bulk", {"lines": text, "relay": "primary"})
    assert status == 200
    assert "<strong>2</strong> added" in page and "<strong>1</strong> skipped" in page and "<strong>4</strong> refused" in page
    assert "relay &#39;nosuch&#39; does not exist" in page and "old.example exists already" in page
    # Each refused line as it was given (the relay too), beside why.
    assert re.search(r'<tr data-line="5"><td data-label="Line">5</td><td data-label="As given"><code>x.example nosuch'
                     r'</code></td><td data-label="Why">x.example: relay &#39;nosuch&#39; does not exist</td>', page)
    assert "line 8, <code>good1.example</code>: good1.example: duplicate of line 1" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert {d.name for d in (await domains.search(app_conn, limit=None)).domains} == {
        "old.example", "good1.example", "good2.example"}
    status, page, _ = await admin_panel.post("/domains/bulk", {"lines": "n.example", "relay": "nosuch",
                                                               "recipients": "everyone"})
    assert status == 400 and "does not exist" in page
    assert 'id="relay-error"' in page and 'id="recipients-error"' in page       # both at once


async def test_what_postfix_is_told_comes_from_routing(admin_panel, app_conn, panel_cfg) -> None:
    await _relay(app_conn, tls="encrypt")
    await domains.add(app_conn, SYSTEM, "shop.example", relay="primary", recipients="listed", include_subdomains=True)
    await recipients.add(app_conn, SYSTEM, "sales@shop.example")
    status, page = await admin_panel.get("/domains/shop.example?recipient=Sales%2Btag@Shop.Example")
    assert status == 200
    store = RouteStore.open(panel_cfg.database)
    try:
        expected = routing.told(store, "shop.example", "Sales+tag@Shop.Example")
    finally:
        store.close()
    rows = re.findall(r'<tr data-map="([a-z_]+)"><td[^>]*>[a-z_]+</td><td[^>]*><code>([^<]*)</code></td>'
                      r'<td[^>]*><code class="answer [a-z]+">([^<]*)</code></td><td[^>]*>([^<]*)</td></tr>', page)
    assert [(m, html.unescape(k), html.unescape(a), html.unescape(w)) for m, k, a, w in rows] == [
        (m, k, a.wire(), a.why) for m, k, a in expected]
    wire = {m: a for m, _, a, _ in rows}
    assert wire == {"relay_domains": "OK shop.example", "transport": "OK relay:[mx1.example.net]:25",
                    "relay_recipients": "OK sales@shop.example", "tls_policy": "OK encrypt"}
    status, page = await admin_panel.get("/domains/shop.example?recipient=nobody")
    assert "NOTFOUND " in page
    status, page = await admin_panel.get("/domains/shop.example?recipient=" + "x" * 300)
    assert status == 200 and "at most 254 characters" in page


async def test_recipients_are_added_and_removed_on_the_domain_page(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    await domains.add(app_conn, SYSTEM, "shop.example", relay="primary", recipients="listed")
    await domains.add(app_conn, SYSTEM, "other.example", relay="primary", recipients="listed")
    for typed, expected in (("sales", "sales@shop.example"), ("Info@Shop.Example", "info@shop.example"),
                            ("@", "@shop.example")):
        status, _, _ = await admin_panel.post("/domains/shop.example/recipients", {"address": typed})
        assert status == 303, typed
        assert expected in [r.address for r in await recipients.list_for(app_conn, "shop.example")]
    for typed, why in (("sales", "listed already"), ("a b", "spaces"), ("x@other.example", "belongs to the domain"),
                       ("", "type an address")):
        status, page, _ = await admin_panel.post("/domains/shop.example/recipients", {"address": typed})
        assert status == 400 and why in html.unescape(page), typed
    assert await recipients.list_for(app_conn, "other.example") == []
    status, _, _ = await admin_panel.post("/domains/shop.example/recipients/remove", {"address": "sales@shop.example"})
    assert status == 303
    status, _, _ = await admin_panel.post("/domains/shop.example/recipients/remove", {"address": "nobody@shop.example"})
    assert status == 404
    assert [r.address for r in await recipients.list_for(app_conn, "shop.example")] == ["@shop.example", "info@shop.example"]


async def test_domains_own_user_sees_and_changes_only_their_domains(new_panel, make_user, app_conn) -> None:
    await _relay(app_conn)
    owner = await make_user("owner", "domains_own")
    await domains.add(app_conn, SYSTEM, "theirs.example", relay="primary")
    await domains.add(app_conn, SYSTEM, "mine.example", relay="primary", owner_id=owner.id)
    panel = await new_panel()
    assert (await panel.login("owner")).status == 303
    status, page = await panel.get("/domains")
    assert names_in(page) == ["mine.example"] and "theirs.example" not in page
    assert (await panel.get("/domains?q=theirs"))[1].count("theirs.example") == 0
    assert (await panel.get("/domains/theirs.example"))[0] == 403
    status, _, _ = await panel.post("/domains/theirs.example/delete", {"confirm": "yes"})
    assert status == 403 and (await domains.get(app_conn, "theirs.example")).enabled
    # What they add is theirs; they cannot give it to someone else.
    status, _, _ = await panel.post("/domains/new", {"name": "new.example", "route": "relay", "relay": "primary",
                                                      "enabled": "1", "owner": "1"})
    assert status == 303 and (await domains.get(app_conn, "new.example")).owner_id == owner.id
    page = (await panel.get("/domains/new"))[1]
    assert 'name="owner"' not in page
    report = (await panel.post("/domains/bulk", {"lines": "b1.example\nb2.example", "relay": "primary"}))[1]
    assert "<strong>2</strong> added" in report
    assert {d.name for d in (await domains.search(app_conn, owner_id=owner.id, limit=None)).domains} == {
        "mine.example", "new.example", "b1.example", "b2.example"}
    # Dashboard counts only their domains; no relays, users or log.
    page = (await panel.get("/"))[1]
    assert "4</span> domains" in page and "Recent changes" not in page and "Relays" not in page


async def test_hostile_text_is_escaped_everywhere_it_is_shown(admin_panel, app_conn) -> None:
    await _relay(app_conn)
    await domains.add(app_conn, SYSTEM, "shop.example", relay="primary")
    pages = [
        (await admin_panel.get("/domains?q=" + HOSTILE))[1],
        (await admin_panel.get("/domains/shop.example?recipient=" + HOSTILE.replace(" ", "")))[1],
        (await admin_panel.post("/profile/tokens", {"token_name": HOSTILE}))[1],
        (await admin_panel.post("/domains/new", {"name": HOSTILE, "route": "relay", "relay": "primary"}))[1],
        (await admin_panel.post("/relays/new", {"name": HOSTILE, "host": HOSTILE}))[1],
        (await admin_panel.post("/domains/shop.example/recipients", {"address": HOSTILE}))[1],
        (await admin_panel.get("/logs?search=" + HOSTILE))[1],
        (await admin_panel.get("/profile"))[1],       # the token named with it
        (await admin_panel.get("/logs"))[1],          # the audit entry of that token
    ]
    for page in pages:
        assert "<script>alert" not in page and 'alert("x")' not in page
    assert sum("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page for page in pages) >= 5


async def test_domain_names_in_urls_are_validated(admin_panel) -> None:
    assert (await admin_panel.get("/domains/no..dots"))[0] == 400
    assert (await admin_panel.get("/domains/absent.example"))[0] == 404
