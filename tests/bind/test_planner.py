"""The sync planner's rules, table by table (pure: no database, no DNS)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from mrod.bindimport.planner import Action, Current, RelayRef, needs_route, plan
from mrod.bindimport.routes import NoRoute, Route
from mrod.bindimport.sources import Found

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
GRACE = timedelta(hours=48)
RELAYS = [RelayRef(1, "primary"), RelayRef(2, "Backup")]
TXT = Route("dns-txt", relay_ref="primary")
DOM = Route("dns-dom")


def found(*names: str, source: str = "bind") -> dict[str, Found]:
    return {n: Found(n, source, "named.conf") for n in names}


def current(name: str, **values) -> Current:
    base: dict[str, Any] = dict(name=name, source="bind", enabled=True, route="dns-txt", relay_id=1, host=None,
                                port=None)
    base.update(values)
    return Current(**base)


def stamp(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_new_zones_are_added_with_their_route_or_reported() -> None:
    p = plan(found("a.example", "b.example", "c.example", "d.example", "e.example"), {},
             {"a.example": TXT, "b.example": Route("dns-sub", host="mail.b.example", port=25),
              "c.example": NoRoute("no usable route (no MX record)"),
              "d.example": Route("dns-txt", relay_ref="nosuch"), "e.example": Route("dns-txt", relay_ref="2")},
             RELAYS, NOW, GRACE)
    assert p.actions == [
        Action("add", "a.example", {"source": "bind", "relay": "primary", "route": "dns-txt"},
               "new zone (named.conf), dns-txt: relay primary"),
        Action("add", "b.example", {"source": "bind", "host": "mail.b.example", "port": 25, "route": "dns-sub"},
               "new zone (named.conf), dns-sub: [mail.b.example]:25"),
        Action("add", "e.example", {"source": "bind", "relay": "Backup", "route": "dns-txt"},
               "new zone (named.conf), dns-txt: relay 2"),
    ]
    assert p.problems == [
        ("c.example", "not imported: no usable route (no MX record)"),
        ("d.example", "not imported: the TXT route names relay 'nosuch', which does not exist"),
    ]


def test_catalog_members_are_added_as_catalog() -> None:
    p = plan(found("m.example", source="catalog"), {}, {"m.example": DOM}, RELAYS, NOW, GRACE)
    assert p.actions == [Action("add", "m.example", {"source": "catalog", "mx": True, "route": "dns-dom"},
                                "new zone (named.conf), dns-dom: by its MX records")]


def test_unchanged_and_route_changes() -> None:
    state = {"same.example": current("same.example"),
             "moved.example": current("moved.example"),
             "dom.example": current("dom.example", route="dns-dom", relay_id=None)}
    p = plan(found(*state), state, {"same.example": TXT, "moved.example": Route("dns-txt", relay_ref="backup"),
                                    "dom.example": DOM}, RELAYS, NOW, GRACE)
    assert p.actions == [Action("update", "moved.example", {"relay": "Backup", "route": "dns-txt"},
                                "route dns-txt: relay primary -> dns-txt: relay backup")]
    assert p.unchanged == 2


def test_dns_failure_keeps_an_imported_domains_route() -> None:
    state = {"a.example": current("a.example")}
    p = plan(found("a.example"), state, {"a.example": NoRoute("DNS lookup failed: timeout", temporary=True)},
             RELAYS, NOW, GRACE)
    assert p.actions == [] and p.unchanged == 1
    assert p.problems == [("a.example", "keeps its route (dns-txt: relay primary): DNS lookup failed: timeout")]


def test_operator_route_is_never_looked_up_nor_changed() -> None:
    state = {"a.example": current("a.example", route="relay", manual=frozenset({"relay_id", "route"})),
             "b.example": current("b.example", manual=frozenset({"recipients"})),
             "m.example": current("m.example", source="manual", route="relay")}
    assert needs_route(found(*state, "new.example"), state) == ["b.example", "new.example"]
    p = plan(found(*state), state, {"a.example": DOM, "b.example": DOM}, RELAYS, NOW, GRACE)
    assert p.actions == [Action("update", "b.example", {"mx": True, "route": "dns-dom"},
                                "route dns-txt: relay primary -> dns-dom: by its MX records")]
    assert p.skipped == 1 and p.notes == [("m.example", "served by BIND, but added by hand (manual): left alone")]


def test_manual_domains_are_never_disabled_or_deleted() -> None:
    state = {"m.example": current("m.example", source="manual"), "a.example": current("a.example", source="api"),
             "old.example": current("old.example", source="api", enabled=False, missing_since=stamp(GRACE * 10))}
    p = plan({}, state, {}, RELAYS, NOW, GRACE)
    assert p.actions == [] and p.unchanged == 0


def test_vanished_zone_is_disabled_then_deleted_after_grace() -> None:
    first = plan({}, {"gone.example": current("gone.example")}, {}, RELAYS, NOW, GRACE)
    assert first.actions == [Action("disable", "gone.example", {"enabled": False},
                                    "missing from BIND; deleted after 2025-06-03T12:00:00Z unless it comes back",
                                    mark_missing=True)]
    waiting = current("gone.example", enabled=False, disabled_by_import=True, missing_since=stamp(GRACE / 2))
    second = plan({}, {"gone.example": waiting}, {}, RELAYS, NOW, GRACE)
    assert second.actions == [] and second.unchanged == 1
    assert second.notes == [("gone.example", "missing from BIND since 2025-05-31T12:00:00Z; deleted after "
                                             "2025-06-02T12:00:00Z unless it comes back")]
    expired = current("gone.example", enabled=False, disabled_by_import=True, missing_since=stamp(GRACE))
    third = plan({}, {"gone.example": expired}, {}, RELAYS, NOW, GRACE)
    assert third.actions == [Action("delete", "gone.example", {},
                                    "missing from BIND since 2025-05-30T12:00:00Z (grace period passed)")]


def test_zero_grace_still_disables_first() -> None:
    first = plan({}, {"gone.example": current("gone.example")}, {}, RELAYS, NOW, timedelta(0))
    assert [a.kind for a in first.actions] == ["disable"]


def test_already_disabled_domain_is_marked_missing_without_change() -> None:
    state = {"off.example": current("off.example", enabled=False, manual=frozenset({"enabled"}))}
    p = plan({}, state, {}, RELAYS, NOW, GRACE)
    assert p.actions == [Action("disable", "off.example", {},
                                "missing from BIND; deleted after 2025-06-03T12:00:00Z unless it comes back",
                                mark_missing=True)]


def test_operator_enabled_missing_domain_is_kept() -> None:
    kept = current("kept.example", enabled=True, missing_since=stamp(GRACE * 3), manual=frozenset({"enabled"}))
    p = plan({}, {"kept.example": kept}, {}, RELAYS, NOW, GRACE)
    assert p.actions == [] and p.unchanged == 1
    assert p.notes == [("kept.example", "missing from BIND since 2025-05-26T12:00:00Z, kept: an operator enabled it")]


def test_returning_zone_is_reenabled_only_if_the_import_disabled_it() -> None:
    by_import = current("back.example", enabled=False, disabled_by_import=True, missing_since=stamp(GRACE / 4))
    by_hand = current("hand.example", enabled=False, disabled_by_import=False, missing_since=stamp(GRACE / 4),
                      manual=frozenset({"enabled"}))
    p = plan(found("back.example", "hand.example"), {"back.example": by_import, "hand.example": by_hand},
             {"back.example": TXT, "hand.example": TXT}, RELAYS, NOW, GRACE)
    assert p.actions == [
        Action("update", "back.example", {"enabled": True}, "back in BIND (missing since 2025-06-01T00:00:00Z)",
               clear_missing=True),
        Action("update", "hand.example", {}, "back in BIND (missing since 2025-06-01T00:00:00Z)", clear_missing=True),
    ]


def test_source_follows_where_the_zone_is_found() -> None:
    state = {"a.example": current("a.example", source="bind")}
    p = plan(found("a.example", source="catalog"), state, {"a.example": TXT}, RELAYS, NOW, GRACE)
    assert p.actions == [Action("update", "a.example", {"source": "catalog"}, "now found in named.conf")]
    assert p.counts() == {"add": 0, "update": 1, "disable": 0, "delete": 0, "unchanged": 0, "skipped": 0,
                          "problems": 0}
