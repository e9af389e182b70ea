"""Which zones BIND serves, from the sources chosen in [bind]: named.conf, zone directories,
catalog zones. One list of mail domains comes out, with what was passed over and why.

Passed over silently (they are never mail domains): other classes than IN, in-view
references (the zone is counted in its own view), zone types not kept (hint, forward, stub,
static-stub, redirect, mirror, ...), the root zone, catalog zones themselves and the
[bind] skip_zones (localhost, reverse zones, ...). Names are decoded as BIND decodes them
(zonenames.py: ``\\DDD`` and ``\\X`` escapes). Passed over with a warning: a decoded name
that is not a valid mail domain. Blocking (files, subprocess, AXFR): call ``discover`` from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mrod.infra.errors import InvalidInput, MrodError
from mrod.bindimport import catalog, checkconf, namedconf, zonedir, zonenames

if TYPE_CHECKING:
    from mrod.infra.config import BindConfig

SYNONYMS = {"master": "primary", "slave": "secondary"}


@dataclass(frozen=True)
class Found:
    name: str       # as stored: lowercase A-labels, no trailing dot
    source: str     # domain.source: 'bind' or 'catalog'
    where: str      # where it was seen, for people


@dataclass
class Discovery:
    zones: dict[str, Found] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (zone, why) by rule
    warnings: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)               # what was read, how


class _Collector:
    def __init__(self, bind: "BindConfig") -> None:
        self.kept_types = {SYNONYMS.get(t, t) for t in bind.zone_types}
        self.exact = {p for p in bind.skip_zones if not p.startswith("*.")}
        self.suffixes = tuple("." + p[2:] for p in bind.skip_zones if p.startswith("*."))
        self.catalogs = {_shown(c) for c in bind.catalog_zones}
        self.policies: set[str] = set()
        self.result = Discovery()

    def skip_reason(self, simple: str) -> str | None:
        if not simple:
            return "the root zone"
        if simple in self.catalogs:
            return "a catalog zone"
        if simple in self.policies:
            return "a response-policy zone"
        if simple in self.exact or simple.endswith(self.suffixes):
            return "in [bind] skip_zones"
        return None

    def offer(self, spelled: str, source: str, where: str) -> None:
        try:
            zone = zonenames.decode(spelled)
        except zonenames.BadZoneName as exc:
            self.result.warnings.append(f"{where}: zone {zonenames.quoted(spelled)} skipped: {exc}")
            return
        why = self.skip_reason(_simple(zone))
        if why is not None:
            self.result.skipped.append((zone.shown, why))
            return
        try:
            name = zonenames.mail_domain(zone)
        except InvalidInput as exc:
            self.result.warnings.append(f"{where}: zone {zonenames.quoted(spelled)} skipped: {exc.message}")
            return
        if name not in self.result.zones:     # the first source (in [bind] sources order) wins
            self.result.zones[name] = Found(name, source, where)


def _simple(zone: zonenames.ZoneName) -> str:
    """The decoded name for the skip rules ('' for the root)."""
    return "" if not zone.labels else zone.shown


def _shown(spelled: str) -> str:
    """A name (decoded where BIND would decode it) for the lists of what was passed over."""
    try:
        return zonenames.decode(spelled).shown
    except zonenames.BadZoneName:
        return spelled


def discover(bind: "BindConfig", base_dir: Path) -> Discovery:
    collector = _Collector(bind)
    for source in bind.sources:
        if source == "named.conf":
            _from_named_conf(bind, collector)
        elif source == "zone-dir":
            _from_zone_dirs(bind, base_dir, collector)
        elif source == "catalog":
            _from_catalogs(bind, collector)
    return collector.result


def read_named_conf(bind: "BindConfig") -> tuple[namedconf.Declarations, str]:
    """The zone declarations of named.conf, through named-checkconf or mrod's parser. Each
    zone carries the file and line that declare it (line 0: not known, see _locate)."""
    path = Path(bind.named_conf)
    program = checkconf.find() if bind.checkconf != "never" else None
    if program is None and bind.checkconf == "always":
        raise namedconf.ConfError(str(path), 0, "named-checkconf is not installed (apt-get install "
                                  "bind9-utils), and [bind] checkconf = \"always\"")
    if program is not None:
        text = checkconf.canonical(path, program)
        statements = namedconf.parse_text(text, f"{path} (named-checkconf -p)", base_dir=path.parent)
        decls = namedconf.declarations(statements)
        how = "named-checkconf -p"
        unlocated = _locate(decls, path)
        if unlocated:
            how += f"; zone lines not located: {unlocated}"
        return decls, how
    return namedconf.declarations(namedconf.parse_file(path)), "mrod's named.conf parser"


def _locate(decls: namedconf.Declarations, path: Path) -> str | None:
    """Give the zones BIND listed the file and line that declare them.

    named-checkconf -p inlines every include and keeps no positions, so mrod's own parser
    reads the same files (it follows includes as BIND does) and each zone is matched by view,
    class and decoded name. Where that reading fails (a construct only BIND understands), the
    zones keep named.conf's path without a line, and the returned text says why."""
    try:
        own = namedconf.declarations(namedconf.parse_file(path))
    except namedconf.ConfError as exc:
        decls.zones[:] = [replace(z, file=str(path), line=0) for z in decls.zones]
        return str(exc)
    where = {(z.view, z.zone_class, _shown(z.name)): (z.file, z.line) for z in own.zones}
    located = []
    for zone in decls.zones:
        file, line = where.get((zone.view, zone.zone_class, _shown(zone.name)), (str(path), 0))
        located.append(replace(zone, file=file, line=line))
    decls.zones[:] = located
    return None


def _from_named_conf(bind: "BindConfig", collector: _Collector) -> None:
    decls, how = read_named_conf(bind)
    collector.result.readers.append(f"{bind.named_conf} ({how})")
    collector.catalogs.update(_shown(c) for c in decls.catalogs)
    collector.policies.update(_shown(c) for c in decls.policies)
    for zone in decls.zones:
        simple = _shown(zone.name)
        if zone.zone_class != "IN":
            collector.result.skipped.append((simple, f"class {zone.zone_class}"))
        elif zone.in_view is not None:
            collector.result.skipped.append((simple, f"in-view of view {zone.in_view} (view {zone.view})"))
        elif SYNONYMS.get(zone.type or "", zone.type) not in collector.kept_types:
            collector.result.skipped.append((simple, f"type {zone.type}"))
        else:
            where = f"{zone.file}:{zone.line}" if zone.line else zone.file
            if zone.view != "_default":
                where += f" (view {zone.view})"
            collector.offer(zone.name, "bind", where)


def _from_zone_dirs(bind: "BindConfig", base_dir: Path, collector: _Collector) -> None:
    for entry in bind.zone_dirs:
        directory = Path(entry) if Path(entry).is_absolute() else base_dir / entry
        scan = zonedir.scan(directory)
        collector.result.readers.append(f"{directory} ({len(scan.zones)} zone files)")
        for zone_file in scan.zones:
            collector.offer(zone_file.name, "bind", str(zone_file.path))
        for path, why in scan.passed_over:
            collector.result.skipped.append((path.name, why))


def _from_catalogs(bind: "BindConfig", collector: _Collector) -> None:
    if not bind.catalog_zones:
        raise MrodError("[bind] sources has 'catalog' but catalog_zones lists no catalog zone")
    if not bind.catalog_server:
        raise MrodError("[bind] sources has 'catalog' but catalog_server is empty")
    # A transfer may be large: allow it more time than one query.
    lifetime = max(10.0, bind.dns_timeout * 10)
    for zone in bind.catalog_zones:
        found = catalog.fetch(bind.catalog_server, bind.catalog_port, zone, lifetime)
        collector.result.readers.append(f"catalog {found.zone} ({len(found.members)} members)")
        collector.result.warnings.extend(found.warnings)
        for member in found.members:
            collector.offer(member, "catalog", f"catalog {found.zone}")
