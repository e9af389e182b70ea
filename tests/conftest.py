"""Fixtures for every test: a private config and database per test, nothing shared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Generator, Iterator

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities.audit import Actor
from tests.data import ACTOR
from tests.harness import IN_CI

# Real-component fixtures live in tests/harness/ and are registered here.
pytest_plugins: list[str] = [
    "tests.harness.diagnostics",
    "tests.harness.smtpsink",
    "tests.harness.mrodproc",
    "tests.harness.postfix",
    "tests.harness.named",
    "tests.harness.browser",
    "tests.harness.postgres",
]

# The PostgreSQL database of each test directory that runs on PostgreSQL: every config made
# for that directory (make_config) names it, as every config names tmp_path/mrod.db otherwise.
_POSTGRESQL: dict[Path, dict[str, str]] = {}


def database_section(tmp_path: Path) -> dict[str, str]:
    """The [database] section for this test's directory: its PostgreSQL database or SQLite file."""
    return dict(_POSTGRESQL.get(tmp_path, {"path": str(tmp_path / "mrod.db")}))


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> configmod.Config:
    data: dict[str, Any] = {
        "database": database_section(tmp_path),
        "lookupd": {"socketmap": "127.0.0.1:0", "policy": ""},
        "admin": {"listen": "127.0.0.1:0"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return configmod.from_dict(data, base_dir=tmp_path)


ENGINES = list(db.ENGINES)
TESTS = Path(__file__).resolve().parent
# The tiers whose tests that use ``engine`` run on every engine: the repositories (core) and
# what reads and writes through them outside the panel (ops, cli, bind). The panel and API
# handlers (admin) run on SQLite, and their PostgreSQL smoke set — the tests marked
# ``both_engines`` — on both; lookupd, postfix and browser tests on SQLite.
EVERY_ENGINE_TIERS = frozenset({"core", "ops", "cli", "bind"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrizes ``engine`` over ENGINES where the test's tier or its ``both_engines``
    marker says so — unless the test pins it with @pytest.mark.parametrize("engine", …)."""
    if "engine" not in metafunc.fixturenames or _pins_engine(metafunc.definition):
        return
    tier = metafunc.definition.path.resolve().relative_to(TESTS).parts[0]
    if tier in EVERY_ENGINE_TIERS or metafunc.definition.get_closest_marker("both_engines") is not None:
        metafunc.parametrize("engine", ENGINES, indirect=True)


def _pins_engine(definition: pytest.Function) -> bool:
    for mark in definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "engine" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)):
            return True
    return False


# Under xdist (-n, `make test`): tests that use machine-wide state — the package tests (they
# install mrod system-wide, /etc/mrod/mrod.toml among it) and the tests that look for that
# file — run on one worker, one after another. By path: the scheduler sees node ids only, and
# xdist's own xdist_group marker cannot reach it under pytest 9.2 (xdist 3.8 renames node ids
# to carry the group, which pytest 9.2 no longer lets it do), so it must not be relied on.
XDIST_GROUPS = {"system": ("tests/package/", "tests/cli/test_config_discovery.py")}
# Package tests that touch nothing machine-wide (README's `make run` in a clone of its own): a
# unit of their own, so the serial group — the suite's longest path — does not wait for them.
OUTSIDE_GROUPS = ("tests/package/test_readme.py::test_quick_start",)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]  # xdist ships no types

    class Grouped(LoadScopeScheduling):
        """Each test is a unit of its own, except that a group's tests are one unit (one
        worker, in order); the largest units are handed out first, so a group starts at once."""

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(OUTSIDE_GROUPS):
                return nodeid
            for group, paths in XDIST_GROUPS.items():
                if nodeid.startswith(paths):
                    return group
            return nodeid

    return Grouped(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under CI every test runs: a skip, however it came about, is reported as a failure (the
    harness's ``require`` already fails there; this catches any other way of skipping)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI must run every test, but it skipped: {reason}"


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine of a test: "sqlite", or each of ENGINES in turn where
    pytest_generate_tests parametrizes it."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """This test's [database] section: a fresh PostgreSQL database (migrated, from the
    session cluster's template; with no schema for tests marked ``fresh_database``) when
    ``engine`` is postgresql, else the SQLite file (which no test has created yet)."""
    if engine == "sqlite":
        yield database_section(tmp_path)
        return
    from tests.harness import postgres

    server = postgres.cluster()
    name = server.new_database(migrated=request.node.get_closest_marker("fresh_database") is None)
    _POSTGRESQL[tmp_path] = {"url": server.url(name), "password_file": str(server.password_file)}
    try:
        yield database_section(tmp_path)
    finally:
        del _POSTGRESQL[tmp_path]
        server.drop_database(name)


@pytest.fixture
def cfg(tmp_path: Path, database: dict[str, str]) -> configmod.Config:
    config = make_config(tmp_path)
    asyncio.run(_init(config.database))
    return config


async def _init(where: db.Where) -> None:
    async with db.opened(where, create=True):
        pass


@pytest.fixture
async def conn(cfg: configmod.Config):
    connection = await db.connect(cfg.database)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def actor() -> Actor:
    return ACTOR
