"""named-checkconf, BIND's own reader of named.conf: ``-p`` (canonical text, includes inlined,
secrets hidden with ``-x``) and ``-l`` (one line per zone).

These functions block (a subprocess): call them from a thread, never on the event loop.
named-checkconf resolves relative include paths from its working directory until
``options { directory }``; it runs in the named.conf's own directory, as mrod's parser assumes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mrod.bindimport.namedconf import CLASSES, ConfError

TIMEOUT = 60.0
_LOCATIONS = ("/usr/bin/named-checkconf", "/usr/sbin/named-checkconf")


def find() -> str | None:
    """The named-checkconf program, or None when bind9-utils is not installed."""
    return shutil.which("named-checkconf") or next((p for p in _LOCATIONS if os.access(p, os.X_OK)), None)


def _run(program: str, flags: list[str], path: Path) -> str:
    path = Path(path).absolute()
    if not path.is_file():
        raise ConfError(str(path), 0, "cannot read: no such file")
    try:
        proc = subprocess.run(
            [program, *flags, str(path)], cwd=path.parent, capture_output=True, timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ConfError(str(path), 0, f"named-checkconf did not finish within {TIMEOUT:g}s") from None
    except OSError as exc:
        raise ConfError(str(path), 0, f"cannot run {program}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        raise _failure(proc.stderr.decode("utf-8", "replace") or proc.stdout.decode("utf-8", "replace"), path)
    return proc.stdout.decode("utf-8", "replace")


def _failure(output: str, path: Path) -> ConfError:
    """named-checkconf reports ``FILE:LINE: message`` lines; the first one is the cause (a
    final ``parsing failed`` line only repeats that there was one)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for line in lines:
        file, sep, rest = line.partition(":")
        number, sep2, message = rest.partition(":")
        if sep and sep2 and number.strip().isdigit():
            # Included files are named as written; name them from named.conf's directory.
            if not Path(file).is_absolute() and (path.parent / file).exists():
                file = str(path.parent / file)
            return ConfError(file, int(number), message.strip())
    return ConfError(str(path), 0, lines[0] if lines else "named-checkconf failed without saying why")


def canonical(path: Path, program: str | None = None) -> str:
    """``named-checkconf -p -x``: the whole configuration, includes inlined, secrets as '?'."""
    program = program or find()
    if program is None:
        raise ConfError(str(path), 0, "named-checkconf is not installed (apt-get install bind9-utils)")
    return _run(program, ["-p", "-x"], path)


@dataclass(frozen=True)
class ListedZone:
    name: str
    zone_class: str
    view: str
    type: str
    in_view: str | None = None


def listing(path: Path, program: str | None = None) -> list[ListedZone]:
    """``named-checkconf -l``: ``NAME CLASS VIEW TYPE`` per zone (``in-view OTHER`` as TYPE)."""
    program = program or find()
    if program is None:
        raise ConfError(str(path), 0, "named-checkconf is not installed (apt-get install bind9-utils)")
    zones = []
    for line in _run(program, ["-l"], path).splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        zone_class = CLASSES.get(parts[1].lower(), parts[1].upper())
        if len(parts) == 5 and parts[3] == "in-view":
            zones.append(ListedZone(parts[0], zone_class, parts[2], "in-view", parts[4]))
        elif len(parts) == 4:
            zones.append(ListedZone(parts[0], zone_class, parts[2], parts[3].lower()))
    return zones
