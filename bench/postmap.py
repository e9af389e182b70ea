"""Postfix's own client, ``postmap -q - MAP < keys``: the three maps being compared and the way
they are timed.

postmap needs a config directory (there is no /etc/postfix/main.cf here): a minimal one with
only ``compatibility_level`` is made per run. Each map gets the same question Postfix's
relay_domains asks — "is this domain relayed?" — and answers with the domain name, so the
output of the three (``key<TAB>value`` for every hit) must be byte-for-byte identical.

Timing is wall clock around the whole postmap process (its start-up, a few ms, included);
sequential = one postmap (one connection, one lookup at a time), optionally pinned to given
CPUs; concurrent = N postmaps
started together, each with its own slice of the keys; aggregate = all keys / wall time
from the first spawn to the last exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"


class MapError(RuntimeError):
    """postmap failed (a lookup error is fatal to postmap)."""


@dataclass(frozen=True)
class Map:
    label: str      # how the report names it
    spec: str       # the Postfix map, e.g. socketmap:inet:127.0.0.1:PORT:relay_domains


def config_dir(workdir: Path) -> Path:
    d = workdir / "postfix"
    d.mkdir(exist_ok=True)
    (d / "main.cf").write_text("compatibility_level = 3.6\n")
    return d


def socketmap(endpoint: str, label: str) -> Map:
    """endpoint: ``127.0.0.1:PORT`` or ``unix:/path``."""
    where = endpoint if endpoint.startswith("unix:") else f"inet:{endpoint}"
    return Map(label, f"socketmap:{where}:relay_domains")


def sqlite(workdir: Path, db_path: Path) -> Map:
    # relay_domains in mrod: an enabled domain of that name (parent matching aside, which
    # needs include_subdomains and no benchmark domain has it).
    cf = workdir / "sqlite-relay_domains.cf"
    cf.write_text(f"dbpath = {db_path}\n"
                  "query = SELECT name FROM domain WHERE name = '%s' AND enabled = 1\n")
    return Map("sqlite: (in Postfix)", f"sqlite:{cf}")


def pgsql(workdir: Path, host: str, port: int, dbname: str, user: str, label: str) -> Map:
    """host: 127.0.0.1 for TCP, or the socket directory for a unix socket."""
    cf = workdir / f"pgsql-{'tcp' if host == '127.0.0.1' else 'unix'}-relay_domains.cf"
    where = f"postgresql://{user}@127.0.0.1:{port}/{dbname}" if not host.startswith("/") else \
        f"postgresql:///{dbname}?host={host}&port={port}&user={user}"
    cf.write_text(f"hosts = {where}\ndbname = {dbname}\nuser = {user}\n"
                  "query = SELECT name FROM domain WHERE name = '%s' AND enabled\n")
    return Map(label, f"pgsql:{cf}")


def command(confdir: Path, m: Map) -> list[str]:
    return [POSTMAP, "-c", str(confdir), "-q", "-", m.spec]


def run_once(confdir: Path, m: Map, keys_file: Path, timeout: float = 300.0,
             cpus: set[int] | None = None) -> tuple[float, bytes]:
    """(seconds, output) of one ``postmap -q - MAP < keys_file``; cpus: pin postmap to these."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    with open(keys_file, "rb") as stdin:
        started = time.perf_counter()
        out = subprocess.run(command(confdir, m), stdin=stdin, capture_output=True, timeout=timeout,
                             preexec_fn=pin)
        elapsed = time.perf_counter() - started
    if out.returncode not in (0, 1) or out.stderr:
        raise MapError(f"{m.label}: postmap exited {out.returncode}: {out.stderr.decode()[:500]}")
    return elapsed, out.stdout


def run_parallel(confdir: Path, m: Map, slices: list[Path], timeout: float = 300.0) -> tuple[float, list[bytes]]:
    """(seconds from first spawn to last exit, outputs in slice order) of one postmap per slice."""
    procs = []
    files = [open(s, "rb") for s in slices]
    try:
        started = time.perf_counter()
        for f in files:
            procs.append(subprocess.Popen(command(confdir, m), stdin=f, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE))
        results = [p.communicate(timeout=timeout) for p in procs]
        elapsed = time.perf_counter() - started
    finally:
        for f in files:
            f.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, err) in zip(procs, results, strict=True):
        if p.returncode not in (0, 1) or err:
            raise MapError(f"{m.label}: postmap exited {p.returncode}: {err.decode()[:500]}")
    return elapsed, [out for out, _err in results]


def split_keys(keys: list[str], parts: int, workdir: Path) -> list[Path]:
    """Contiguous slices of the key file, one per client."""
    size = -(-len(keys) // parts)
    paths = []
    for i in range(parts):
        p = workdir / f"keys-slice{i:02d}.txt"
        p.write_text("".join(k + "\n" for k in keys[i * size:(i + 1) * size]))
        paths.append(p)
    return paths
