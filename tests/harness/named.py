"""Real BIND for tests: ``named -g -c CONF`` on 127.0.0.1 and a free port, in its own directory.

``start_named(zones, options="", extra="")`` (fixture) writes a private named.conf —
its own directory, pid-file, lock-file, session-keyfile, ``controls { };``, recursion off,
no NOTIFY (a primary would otherwise send them to the NS hosts of its zones), transfers to
127.0.0.1 only — and one zone file per zone, starts named in the foreground, waits until
it answers by querying it with dnspython, and stops it at teardown. Tests using it are
marked ``bind``; without Debian's bind9 they skip (and fail under CI).

``named`` (fixture) is the one named a test module shares, serving the module's
``NAMED_ZONES = {zone: records}`` (each made a zone by ``zone_text``): started once per module
(per xdist worker), it suits tests that only query. Its ``conf`` is the test's own copy of the
config the server runs with, so a test may change it (what an importer reads) without touching
the server or the next test. A test that needs its own server or options uses ``start_named``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.harness import free_port, require_tool

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Named:
    port: int
    directory: Path
    conf: Path
    process: subprocess.Popen
    log: Path
    zones: dict[str, str] = field(default_factory=dict)

    host = "127.0.0.1"

    def answers(self, name: str, rdtype: str = "SOA") -> dns.message.Message | None:
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD
        try:
            return dns.query.udp(query, self.host, port=self.port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def zone_text(origin: str, records: str = "", serial: int = 1) -> str:
    """A small zone file: SOA, NS (an address under the zone) and ``records``."""
    return (
        f"$ORIGIN {origin}.\n$TTL 300\n"
        f"@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 127.0.0.1\n" + records + "\n"
    )


def named_conf(directory: Path, port: int, zones: dict[str, str], options: str = "", extra: str = "") -> str:
    d = str(directory)
    lines = [
        "options {",
        f'  directory "{d}";',
        f'  pid-file "{d}/named.pid";',
        f'  lock-file "{d}/named.lock";',
        f'  session-keyfile "{d}/session.key";',
        f'  managed-keys-directory "{d}";',
        f"  listen-on port {port} {{ 127.0.0.1; }};",
        "  listen-on-v6 { none; };",
        "  recursion no;",
        "  notify no;",
        "  dnssec-validation no;",
        "  allow-transfer { 127.0.0.1; };",
        options,
        "};",
        "controls { };",
    ]
    for name in zones:
        lines.append(f'zone "{name}" {{ type primary; file "{name}.db"; }};')
    lines.append(extra)
    return "\n".join(lines) + "\n"


def start(directory: Path, zones: dict[str, str], options: str = "", extra: str = "") -> Named:
    program = require_tool("named", "bind9")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    for name, text in zones.items():
        (directory / f"{name}.db").write_text(text)
    conf = directory / "named.conf"
    conf.write_text(named_conf(directory, port, zones, options, extra))
    log = directory / "named.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([program, "-g", "-4", "-n", "1", "-c", str(conf)], cwd=directory,
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Named(port, directory, conf, process, log, dict(zones))
    probe = next(iter(zones), "version.bind")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"named exited with {process.returncode}:\n{server.log_tail()}")
        reply = server.answers(probe)
        if reply is not None and reply.rcode() == dns.rcode.NOERROR:
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"named did not answer within {START_TIMEOUT:g}s:\n{server.log_tail()}")


@pytest.fixture
def start_named(tmp_path: Path) -> Iterator[Callable[..., Named]]:
    """start_named(zones={name: zone text}, options="...", extra="...") -> a running Named."""
    started: list[Named] = []

    def factory(zones: dict[str, str], options: str = "", extra: str = "", name: str = "named") -> Named:
        server = start(tmp_path / name, zones, options, extra)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def named_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Named]:
    """The module's named (see ``named``)."""
    zones = getattr(request.module, "NAMED_ZONES", None)
    if not isinstance(zones, dict):
        pytest.fail(f"{request.module.__name__} uses the named fixture but defines no NAMED_ZONES", pytrace=False)
    server = start(tmp_path_factory.mktemp("named"), {name: zone_text(name, records) for name, records in zones.items()})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def named(named_server: Named, tmp_path: Path) -> Named:
    """The module's named, with ``conf`` this test's own copy of its config."""
    conf = tmp_path / "named.conf"
    shutil.copyfile(named_server.conf, conf)
    return dataclasses.replace(named_server, conf=conf)
