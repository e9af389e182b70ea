"""The sync plan: what the database holds + what BIND serves + the routes found -> actions.

Pure (no I/O), so a dry run, the panel's preview and a real run decide alike. The rules:

* a new zone with a usable route is added (source bind or catalog); without one it is
  reported, not added;
* an imported domain takes the route found, unless an operator changed its route by hand
  (domain.manual_fields): then its route is the operator's; a DNS failure keeps the old route;
* a domain an operator created (source manual or api) is never touched;
* an imported domain missing from BIND is disabled (never deleted at once); it is deleted
  once missing for the grace period, unless an operator enabled it again meanwhile;
* a zone that comes back is re-enabled — only if the import was what disabled it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from mrod.infra import db
from mrod.bindimport.routes import NoRoute, Route
from mrod.bindimport.sources import Found

IMPORTED_SOURCES = ("bind", "catalog")
# Columns that make up a route: an operator who set any of them owns the route.
ROUTE_COLUMNS = frozenset({"relay_id", "host", "port", "protocol", "tls", "route"})
KINDS = ("add", "update", "disable", "delete")


@dataclass(frozen=True)
class Current:
    """A domain row as the planner needs it."""

    name: str
    source: str
    enabled: bool
    route: str
    relay_id: int | None
    host: str | None
    port: int | None
    manual: frozenset[str] = frozenset()
    missing_since: str | None = None
    disabled_by_import: bool = False

    @property
    def imported(self) -> bool:
        return self.source in IMPORTED_SOURCES

    @property
    def route_is_manual(self) -> bool:
        return bool(self.manual & ROUTE_COLUMNS)


@dataclass(frozen=True)
class RelayRef:
    id: int
    name: str


@dataclass(frozen=True)
class Action:
    kind: str                 # add | update | disable | delete
    name: str
    spec: dict[str, Any]      # keyword arguments for mrod.entities.domains.add / update
    why: str
    mark_missing: bool = False
    clear_missing: bool = False


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)   # (domain, what is wrong)
    notes: list[tuple[str, str]] = field(default_factory=list)      # (domain, fyi)
    unchanged: int = 0
    skipped: int = 0

    def of(self, kind: str) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]

    def counts(self) -> dict[str, int]:
        out = {kind: len(self.of(kind)) for kind in KINDS}
        out.update(unchanged=self.unchanged, skipped=self.skipped, problems=len(self.problems))
        return out


def relay_index(relays: list[RelayRef]) -> dict[str, RelayRef]:
    """A TXT record names a relay by id or by name (names are never all digits)."""
    index = {str(r.id): r for r in relays}
    index.update({r.name.lower(): r for r in relays})
    return index


def needs_route(found: Mapping[str, Found], current: Mapping[str, Current]) -> list[str]:
    """The zones whose route is the importer's to decide (new ones, imported ones whose route
    no operator took over): only these are looked up in DNS."""
    out = []
    for name in found:
        cur = current.get(name)
        if cur is None or (cur.imported and not cur.route_is_manual):
            out.append(name)
    return out


def _route_spec(route: Route, relays: Mapping[str, RelayRef]) -> dict[str, Any] | str:
    """The domains.add/update arguments for a route, or why it cannot be used."""
    if route.strategy == "dns-txt":
        relay = relays.get((route.relay_ref or "").lower())
        if relay is None:
            return f"the TXT route names relay {route.relay_ref!r}, which does not exist"
        return {"relay": relay.name, "route": "dns-txt"}
    if route.strategy == "dns-sub":
        return {"host": route.host, "port": route.port, "route": "dns-sub"}
    return {"mx": True, "route": "dns-dom"}


def _same_route(cur: Current, spec: Mapping[str, Any], relays: Mapping[str, RelayRef]) -> bool:
    if cur.route != spec["route"]:
        return False
    if spec["route"] == "dns-txt":
        return cur.relay_id == relays[spec["relay"].lower()].id
    if spec["route"] == "dns-sub":
        return cur.relay_id is None and cur.host == spec["host"] and cur.port == spec["port"]
    return cur.relay_id is None and cur.host is None


def describe(cur: Current, relays_by_id: Mapping[int, str]) -> str:
    if cur.relay_id is not None:
        return f"{cur.route}: relay {relays_by_id.get(cur.relay_id, cur.relay_id)}"
    if cur.host is not None:
        return f"{cur.route}: [{cur.host}]:{cur.port}"
    return f"{cur.route}: by its MX records"


def plan(
    found: Mapping[str, Found],
    current: Mapping[str, Current],
    routes: Mapping[str, Route | NoRoute],
    relays: list[RelayRef],
    now: datetime,
    grace: timedelta,
) -> Plan:
    index = relay_index(relays)
    by_id = {r.id: r.name for r in relays}
    out = Plan()
    for name in sorted(found):
        cur = current.get(name)
        if cur is None:
            _plan_new(out, found[name], routes.get(name), index)
        elif not cur.imported:
            out.skipped += 1
            out.notes.append((name, f"served by BIND, but added by hand ({cur.source}): left alone"))
        else:
            _plan_present(out, found[name], cur, routes.get(name), index, by_id)
    for name in sorted(current.keys() - found.keys()):
        cur = current[name]
        if cur.imported:
            _plan_missing(out, cur, now, grace)
    order = {kind: i for i, kind in enumerate(KINDS)}
    out.actions.sort(key=lambda a: (order[a.kind], a.name))
    return out


def _plan_new(out: Plan, zone: Found, route: Route | NoRoute | None, index: Mapping[str, RelayRef]) -> None:
    if route is None:
        out.problems.append((zone.name, "not imported: its route was not looked up (it appeared during "
                                        "the run); the next run will"))
        return
    if isinstance(route, NoRoute):
        out.problems.append((zone.name, f"not imported: {route.reason}"))
        return
    spec = _route_spec(route, index)
    if isinstance(spec, str):
        out.problems.append((zone.name, f"not imported: {spec}"))
        return
    out.actions.append(Action("add", zone.name, {"source": zone.source, **spec},
                              f"new zone ({zone.where}), {route.describe()}"))


def _plan_present(out: Plan, zone: Found, cur: Current, route: Route | NoRoute | None,
                  index: Mapping[str, RelayRef], by_id: Mapping[int, str]) -> None:
    spec: dict[str, Any] = {}
    why: list[str] = []
    back = cur.missing_since is not None
    if back:
        why.append(f"back in BIND (missing since {cur.missing_since})")
        if cur.disabled_by_import and not cur.enabled:
            spec["enabled"] = True
    if cur.source != zone.source and "source" not in cur.manual:
        spec["source"] = zone.source
        why.append(f"now found in {zone.where}")
    if not cur.route_is_manual:
        if isinstance(route, Route):
            wanted = _route_spec(route, index)
            if isinstance(wanted, str):
                out.problems.append((zone.name, f"keeps its route ({describe(cur, by_id)}): {wanted}"))
            elif not _same_route(cur, wanted, index):
                spec.update(wanted)
                why.append(f"route {describe(cur, by_id)} -> {route.describe()}")
        elif isinstance(route, NoRoute):
            out.problems.append((zone.name, f"keeps its route ({describe(cur, by_id)}): {route.reason}"))
    if spec or back:
        out.actions.append(Action("update", zone.name, spec, "; ".join(why), clear_missing=back))
    else:
        out.unchanged += 1


def _plan_missing(out: Plan, cur: Current, now: datetime, grace: timedelta) -> None:
    if cur.missing_since is None:
        deadline = db.stamp(now + grace)
        out.actions.append(Action("disable", cur.name, {"enabled": False} if cur.enabled else {},
                                  f"missing from BIND; deleted after {deadline} unless it comes back",
                                  mark_missing=True))
        return
    since = db.parse_stamp(cur.missing_since)
    if cur.enabled:
        out.unchanged += 1
        out.notes.append((cur.name, f"missing from BIND since {cur.missing_since}, kept: an operator enabled it"))
    elif now - since >= grace:
        out.actions.append(Action("delete", cur.name, {},
                                  f"missing from BIND since {cur.missing_since} (grace period passed)"))
    else:
        out.unchanged += 1
        out.notes.append((cur.name, f"missing from BIND since {cur.missing_since}; deleted after "
                                    f"{db.stamp(since + grace)} unless it comes back"))
