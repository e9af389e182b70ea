"""The package tests share one machine-wide state (the installed mrod, its user, /etc/mrod): they
run one after another, in one worker under pytest-xdist (`--dist loadgroup`), and build each
.deb once per session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.package import debian


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it too when installed; --strict-markers needs it either way.
    config.addinivalue_line("markers", "xdist_group(name): run in one xdist worker with the group's other tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("package"):
            item.add_marker(pytest.mark.xdist_group("package"))


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's repository as the tests pull from it (debian.upstream: branches release, next)."""
    debian.require_packaging()
    return debian.upstream(tmp_path_factory.mktemp("upstream") / "mrod")


@pytest.fixture(scope="session")
def debs(upstream: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The .deb of branch release and of branch next, each built from a fresh clone — both at
    once: a build mostly waits (pip, dpkg-deb), and this fixture is on the suite's longest path."""
    jobs = []
    for branch in (debian.RELEASE, debian.NEXT):
        clone = tmp_path_factory.mktemp(f"clone-{branch}") / "mrod"
        debian.git(clone.parent, "clone", "--quiet", "--branch", branch, str(upstream), clone.name)
        jobs.append((clone, tmp_path_factory.mktemp(f"debs-{branch}")))
    with ThreadPoolExecutor(len(jobs)) as pool:
        release, later = pool.map(lambda job: debian.build(*job), jobs)
    return release, later
