"""Zone names from a directory of zone files (Debian: /var/cache/bind, /var/lib/bind).

The name comes from the file name (``example.com``, ``db.example.com``, ``example.com.db``,
``example.com.zone``, ``example.com.db.signed``): secondary zones are usually in BIND's binary
raw format, which is read by nobody but BIND. The first bytes only tell whether a file is a
zone at all (raw/map header, or text with an SOA record). Journals, BIND's own state files
(.nzd/.nzf, managed-keys, keys) and catalog-member files (``__catz__*``, whose names are hashed:
catalog members come from the catalog source) are passed over.
Blocking file I/O: call from a thread.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from mrod.bindimport.namedconf import ConfError

# Files that are never zones, by name.
SKIP_SUFFIXES = (".jnl", ".nzd", ".nzd-lock", ".nzf", ".mkeys", ".key", ".private", ".state",
                 ".jbk", ".lock", ".tmp", ".swp", ".bak", ".orig", ".dpkg-dist", ".dpkg-old", "~")
SKIP_PREFIXES = ("managed-keys.bind", "__catz__", "tmp-", ".", "#")
SKIP_NAMES = frozenset({"named.conf", "bind.keys", "rndc.key", "session.key", "named.stats",
                        "named_dump.db", "named.pid", "named.run"})
# Decorations around a zone name in file names, removed in this order.
STRIP_SUFFIXES = (".signed", ".db", ".zone", ".hosts", ".raw", ".txt")
STRIP_PREFIX = "db."
HEAD_BYTES = 64 * 1024
# BIND's raw (2) and map (3) master file formats start with this header: format, version.
_RAW_HEADER = struct.Struct(">II")
_SOA = re.compile(rb"(^|\s)SOA\s", re.IGNORECASE)
_DIRECTIVE = re.compile(rb"^\$(ORIGIN|TTL|INCLUDE)\s", re.MULTILINE)


@dataclass(frozen=True)
class ZoneFile:
    name: str       # as derived from the file name (validated by the caller)
    path: Path


@dataclass
class Scan:
    zones: list[ZoneFile] = field(default_factory=list)
    # (path, why) for files looked at and passed over because they are not zones
    passed_over: list[tuple[Path, str]] = field(default_factory=list)


def zone_name(file_name: str) -> str:
    """The zone a file name stands for: ``db.example.com`` / ``example.com.db.signed`` ->
    ``example.com``. ``db.`` is taken as Debian's prefix only when a full name remains."""
    name = file_name
    for suffix in STRIP_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    if name.lower().startswith(STRIP_PREFIX) and "." in name[len(STRIP_PREFIX):]:
        name = name[len(STRIP_PREFIX):]
    return name


def is_skipped_name(file_name: str) -> bool:
    lowered = file_name.lower()
    return (lowered in SKIP_NAMES or lowered.startswith(SKIP_PREFIXES)
            or lowered.endswith(SKIP_SUFFIXES))


def looks_like_zone(head: bytes) -> bool:
    """Raw/map header, or zone-file text with an SOA record or a $ORIGIN/$TTL directive."""
    if len(head) >= _RAW_HEADER.size:
        fmt, version = _RAW_HEADER.unpack_from(head)
        if fmt in (2, 3) and version <= 1:
            return True
    if b"\0" in head:
        return False
    return bool(_SOA.search(head) or _DIRECTIVE.search(head))


def scan(directory: Path) -> Scan:
    """Every zone file directly in ``directory`` (not recursive). An unreadable directory or
    zone file is an error that names it: a half-seen directory would disable real zones."""
    result = Scan()
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise ConfError(str(directory), 0, f"cannot read zone directory: {exc.strerror or exc}") from None
    for entry in entries:
        path = Path(entry.path)
        try:
            if not entry.is_file():
                continue
        except OSError:
            continue
        if is_skipped_name(entry.name):
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            raise ConfError(str(path), 0, f"cannot read zone file: {exc.strerror or exc}") from None
        if not head:
            result.passed_over.append((path, "empty file"))
        elif not looks_like_zone(head):
            result.passed_over.append((path, "not a zone file (no raw header, no SOA record)"))
        else:
            result.zones.append(ZoneFile(zone_name(entry.name), path))
    return result
