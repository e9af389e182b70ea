"""mrod as a user runs it: the real CLI and the real ``mrod lookupd`` daemon as subprocesses
(a pytest plugin).

``MrodProcess(directory)`` writes a TOML config — the database in ``directory``, a socketmap
and one tcp_table endpoint per map on free 127.0.0.1 ports, the policy service off, a short
``lookup_deadline`` — and creates the database with ``mrod init``. Then:

    m = mrod_factory()                         # config written, database made, lookupd running
    m.cli("relay", "add", "p1", "--host", "127.0.0.1", "--port", "2525")   # raises on exit != 0
    m.cli("domain", "rm", "gone.example", check=False).returncode
    m.config                                   # the mrod.config.Config the daemon runs with
    m.socketmap_table("transport")             # 'socketmap:inet:127.0.0.1:P:transport'
    m.tcp_table("transport")                   # 'tcp:127.0.0.1:P'
    m.stop()                                   # SIGTERM; asserts exit 0 within 5 s and no ERROR logged
    m.start()                                  # again, same ports and database

``mrod_factory(*, start=True, socketmap=True, tcp_tables=ROUTING_MAPS, lookup_deadline=1.0,
allow_errors=False, database=None, node=None, init=True, database_path=True, **other_lookupd_settings)``
is function-scoped (``database={"url": ..., "password_file": ...}``, ``node="mx-a"``, ``init=False``:
a node of a shared PostgreSQL that another node initialised; ``database_path=False``: no
``[database] path`` in its config; ``serve=True``: `mrod serve` with the
panel on ``admin_port``; ``add_section("postfix", config_dir=...)`` before starting); ``module_mrod_factory``
shares instances across a module (for tests that only read). Every process is stopped at
teardown, and fails the test if lookupd logged an ERROR or a traceback (an internal fault, even
one answered TEMP) unless ``allow_errors``; lookupd's stderr is shown when a test fails
(tests.harness.diagnostics). No root needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from mrod.infra import config as configmod
from mrod.infra.enums import MAPS as ROUTING_MAPS
from tests.harness import accepts, diagnostics, free_port

STOP_TIMEOUT = 5.0
# Generous: under `make test` several workers share the cores, and a start that is only slow
# must not fail the test (a process that exits is seen at once, whatever this says).
START_TIMEOUT = 60.0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class MrodProcess:
    def __init__(self, directory: Path, *, socketmap: bool = True, tcp_tables: tuple[str, ...] = ROUTING_MAPS,
                 lookup_deadline: float = 1.0, allow_errors: bool = False, database: dict[str, str] | None = None,
                 node: str | None = None, init: bool = True, serve: bool = False, database_path: bool = True,
                 **lookupd: Any) -> None:
        self.directory = Path(directory)
        # An ERROR or a traceback in lookupd's log is an internal fault (a bug) even when the
        # lookup still answered TEMP: stop() fails on one unless the test expects it.
        self.allow_errors = allow_errors
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "mrod.toml"
        self.db_path = self.directory / "mrod.db"
        self.stderr_path = self.directory / "lookupd.stderr"
        self.socketmap_port = free_port() if socketmap else None
        self.tcp_ports = {name: free_port() for name in tcp_tables}
        settings: dict[str, Any] = {
            "socketmap": f"127.0.0.1:{self.socketmap_port}" if socketmap else "",
            "policy": "",
            "lookup_deadline": lookup_deadline,
            **lookupd,
        }
        # database: more [database] keys (url, password_file: a node of a PostgreSQL cluster,
        # whose path's directory holds its own state — the routing snapshot file — unless
        # [node] state_dir says otherwise). database_path=False leaves `path` out, as a
        # PostgreSQL node's config may: its state directory is then var/ beside the config.
        lines = ["[database]"] + ([f"path = {_toml_value(self.db_path)}"] if database_path else [])
        lines += [f"{key} = {_toml_value(value)}" for key, value in (database or {}).items()]
        if node is not None:
            lines += ["", "[node]", f"name = {_toml_value(node)}"]
        lines += ["", "[lookupd]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
        lines += ["", "[lookupd.tcp_table]"]
        lines += [f"{name} = \"127.0.0.1:{port}\"" for name, port in self.tcp_ports.items()]
        # serve: `mrod serve` (lookupd, panel and jobs) instead of `mrod lookupd`; the panel on a
        # port of its own, the DNS checks off (they would ask the world's name servers).
        self.serve = serve
        self.admin_port = free_port() if serve else None
        if serve:
            lines += ["", "[admin]", f'listen = "127.0.0.1:{self.admin_port}"', "", "[checks]", "enabled = false"]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.config = configmod.load(self.config_path, env={})
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        if init:     # not for a second node of a shared database: the first made it
            self.cli("init")

    def add_section(self, section: str, **settings: Any) -> None:
        """Append a ``[section]`` to the config (before ``start``: e.g. ``postfix``, once the
        Postfix instance that reads this config exists)."""
        lines = ["", f"[{section}]", *(f"{key} = {_toml_value(value)}" for key, value in settings.items())]
        with open(self.config_path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
        self.config = configmod.load(self.config_path, env={})

    # -- the CLI ---------------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mrod", "--config", str(self.config_path), *args]

    def cli(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``mrod --config FILE ARGS...``; with check, a non-zero exit raises with its stderr."""
        result = subprocess.run(self.command(*args), input=input, capture_output=True, text=True,
                                timeout=timeout, env=self._env())
        if check and result.returncode != 0:
            raise AssertionError(f"mrod {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr.strip() or result.stdout.strip()}")
        return result

    def _env(self) -> dict[str, str]:
        # Only the config file speaks: no MROD_* override leaks in from the caller.
        return {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}

    # -- table references for Postfix ------------------------------------------------------

    def socketmap_table(self, map_name: str) -> str:
        assert self.socketmap_port is not None, "this instance has no socketmap endpoint"
        return f"socketmap:inet:127.0.0.1:{self.socketmap_port}:{map_name}"

    def tcp_table(self, map_name: str) -> str:
        return f"tcp:127.0.0.1:{self.tcp_ports[map_name]}"

    def ports(self) -> list[int]:
        return [p for p in (self.socketmap_port, *self.tcp_ports.values(), self.admin_port) if p is not None]

    # -- the daemon -------------------------------------------------------------------------

    def start(self) -> "MrodProcess":
        if self.process is not None:
            return self
        self._stderr = open(self.stderr_path, "ab")
        self.process = subprocess.Popen(self.command("--log-level", "DEBUG", "serve" if self.serve else "lookupd"),
                                        stdin=subprocess.DEVNULL,
                                        stdout=self._stderr, stderr=self._stderr, env=self._env())
        diagnostics.watch(self)
        deadline = time.monotonic() + START_TIMEOUT
        waiting = set(self.ports())
        while waiting:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reap()
                raise AssertionError(f"mrod lookupd exited {code} at start:\n{self.stderr_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"mrod lookupd did not listen on {sorted(waiting)} within "
                                     f"{START_TIMEOUT:g}s:\n{self.stderr_text()}")
            waiting = {p for p in waiting if not accepts(p)}
            if waiting:
                time.sleep(0.05)
        return self

    def stop(self) -> int:
        """SIGTERM, and insist on a clean exit (status 0) within a few seconds."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"mrod lookupd did not exit within {STOP_TIMEOUT:g}s of SIGTERM:\n"
                                 f"{self.stderr_text()}") from None
        self._reap()
        if code != 0:
            raise AssertionError(f"mrod lookupd exited {code} after SIGTERM:\n{self.stderr_text()}")
        if not self.allow_errors:
            errors = [line for line in self.stderr_text().splitlines()
                      if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]
            if errors:
                raise AssertionError("mrod lookupd logged internal errors:\n" + "\n".join(errors)
                                     + f"\n{diagnostics.tail(self.stderr_text(), 60)}")
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self._reap()

    def _reap(self) -> None:
        self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        diagnostics.unwatch(self)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self) -> list[tuple[str, str]]:
        return [(f"mrod lookupd stderr ({self.directory})", diagnostics.tail(self.stderr_text(), 60))]


class _Factory:
    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.made: list[MrodProcess] = []

    def __call__(self, *, start: bool = True, **options: Any) -> MrodProcess:
        instance = MrodProcess(Path(tempfile.mkdtemp(prefix="mrod-", dir=self.base)), **options)
        self.made.append(instance)
        return instance.start() if start else instance

    def close(self) -> None:
        errors = []
        for instance in self.made:
            try:
                instance.stop()
            except AssertionError as exc:
                errors.append(str(exc))
        if errors:
            raise AssertionError("\n".join(errors))


def _factory(base: Path) -> Iterator[_Factory]:
    factory = _Factory(base)
    try:
        yield factory
    finally:
        factory.close()   # the files stay in pytest's temporary directory for a post-mortem


@pytest.fixture
def mrod_factory(tmp_path: Path) -> Iterator[Callable[..., MrodProcess]]:
    yield from _factory(tmp_path / "mrod")


@pytest.fixture(scope="module")
def module_mrod_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MrodProcess]]:
    yield from _factory(tmp_path_factory.mktemp("mrod"))
