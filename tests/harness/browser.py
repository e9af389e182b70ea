"""Real headless Chromium driving the real panel (a pytest plugin).

``panel_server(database=None, sections=None, **admin)`` starts ``python -m mrod --config F admin`` — the
command an operator runs — on 127.0.0.1 and a free port (``sections`` add keys to the config,
e.g. ``{"database": {"url": …}}`` for PostgreSQL), reads the first admin's password
from its stdout when it creates one, and stops it (SIGTERM, clean exit) at teardown:

    def test_x(panel_server, chromium):
        server = panel_server()                  # server.url, server.password, server.cli(...)
        page = chromium.new_page()
        page.goto(server.url + "/login")

``chromium`` is a Playwright browser context on Debian's /usr/bin/chromium (no browser is
downloaded): one Chromium per test session (per xdist worker), a new context per test — its
own cookies, storage and cache, as a fresh profile would have. Mark such tests
``@pytest.mark.browser``; outside CI they skip when Chromium or Playwright is missing, under
CI (CI=true) they fail (tests.harness.require).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.harness import accepts, diagnostics, free_port, require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
# Generous: under `make test` several workers share the cores, and a start that is only slow
# must not fail the test (a process that exits is seen at once, whatever this says).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class PanelServer:
    def __init__(self, directory: Path, database: Path | None = None, sections: dict[str, dict[str, Any]] | None = None,
                 **admin: Any) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "panel.toml"
        self.database = database or directory / "mrod.db"
        settings: dict[str, dict[str, Any]] = {
            "database": {"path": str(self.database)}, "lookupd": {"socketmap": "", "policy": ""},
            "admin": {"listen": f"127.0.0.1:{self.port}", "bcrypt_rounds": 4, **admin}}
        # e.g. {"postfix": {"config_dir": ...}}; {"database": {"url": ...}} adds to [database]
        for section, values in (sections or {}).items():
            settings.setdefault(section, {}).update(values)
        lines = []
        for section, values in settings.items():
            lines += [f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in values.items())]
        self.config_path.write_text("\n".join(lines) + "\n")
        self._initialised = False
        self.output = directory / "panel.out"
        self.password: str | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mrod", "--config", str(self.config_path), *args]

    def _init(self) -> None:
        """`mrod init` once (only it creates a database); its output joins the panel's log,
        where start() reads the first admin's password."""
        if self._initialised or self.database.exists():
            return
        result = subprocess.run(self.command("init"), capture_output=True, text=True, timeout=60, env=_env())
        if result.returncode != 0:
            raise AssertionError(f"mrod init exited {result.returncode}: {result.stderr.strip()}")
        with open(self.output, "a") as out:
            out.write(result.stdout)
        self._initialised = True      # (a PostgreSQL database leaves no file to look for)

    def cli(self, *args: str, input: str | None = None) -> str:
        self._init()
        result = subprocess.run(self.command(*args), input=input, capture_output=True, text=True, timeout=60,
                                env=_env())
        if result.returncode != 0:
            raise AssertionError(f"mrod {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def add_user(self, name: str, password: str, *perms: str, admin: bool = False) -> None:
        args = ["user", "add", name, "--password-stdin", *(["--admin"] if admin else [])]
        for perm in perms:
            args += ["--perm", perm]
        self.cli(*args, input=password + "\n")

    def start(self) -> "PanelServer":
        self._init()
        out = open(self.output, "ab")
        self.process = subprocess.Popen(self.command("admin"), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, env=_env())
        out.close()
        diagnostics.watch(self)
        deadline = time.monotonic() + START_TIMEOUT
        while not accepts(self.port):
            if self.process.poll() is not None:
                raise AssertionError(f"mrod admin exited {self.process.returncode} at start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"mrod admin did not listen on {self.port} within {START_TIMEOUT:g}s:\n{self.log()}")
            time.sleep(0.05)
        found = re.search(r"'admin' with the password: (\S+)", self.log())
        self.password = found.group(1) if found else None
        return self

    def log(self) -> str:
        try:
            return self.output.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"mrod admin did not stop within {STOP_TIMEOUT:g}s of SIGTERM") from None
        finally:
            diagnostics.unwatch(self)
        self.process = None
        if code != 0:
            raise AssertionError(f"mrod admin exited {code} after SIGTERM:\n{self.log()}")

    def diagnostics(self) -> list[tuple[str, str]]:
        return [(f"mrod admin output ({self.directory})", diagnostics.tail(self.log(), 60))]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}


@pytest.fixture
def panel_server(tmp_path: Path) -> Iterator[Callable[..., PanelServer]]:
    made: list[PanelServer] = []

    def start(database: Path | None = None, sections: dict[str, dict[str, Any]] | None = None,
              **admin: Any) -> PanelServer:
        directory = Path(tempfile.mkdtemp(prefix="panel-", dir=tmp_path))
        server = PanelServer(directory, database, sections, **admin)
        made.append(server)
        return server.start()
    yield start
    errors = []
    for server in made:
        try:
            server.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    if errors:
        raise AssertionError("\n".join(errors))


def require_chromium() -> Any:
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} not found (apt-get install chromium, or run `make test` as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed (pip install -e '.[test]')")
    return sync_playwright


class SessionBrowser:
    """One headless Chromium for the whole session (per xdist worker), driven by one sync
    Playwright. That Playwright's event loop runs, suspended, in a greenlet of its own for as
    long as Playwright lives, and Playwright marks it as this thread's running loop between
    its calls — so every ``asyncio.run`` and asyncio test after the first browser test would
    refuse to start ("another loop is running"). The mark is therefore set only while a
    browser test runs (``attach``) and cleared after it (``detach``), as Playwright itself
    does when its loop is interrupted."""

    def __init__(self) -> None:
        sync_playwright = require_chromium()
        self._manager = sync_playwright()
        playwright = self._manager.__enter__()
        try:
            self.browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except BaseException:
            self._manager.__exit__(None, None, None)
            raise
        self._loop = asyncio._get_running_loop()   # Playwright's, marked by its last call
        self.detach()

    def attach(self) -> None:
        asyncio._set_running_loop(self._loop)

    def detach(self) -> None:
        asyncio._set_running_loop(None)

    def close(self) -> None:
        self.attach()
        try:
            self.browser.close()
        finally:
            self._manager.__exit__(None, None, None)    # ends its loop (and the mark with it)


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[SessionBrowser]:
    """The session's Chromium (per xdist worker), launched on first use."""
    browser = SessionBrowser()
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def chromium(chromium_browser: SessionBrowser) -> Iterator[Any]:
    """A Playwright BrowserContext of its own for the test, in the session's Chromium: like a
    fresh profile, it shares no cookies, storage or cache with any other test."""
    chromium_browser.attach()
    try:
        context = chromium_browser.browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB",
                                                       timezone_id="UTC")
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
    finally:
        chromium_browser.detach()
