"""packaging/deb/requirements.lock, the pins the Debian package's venv is built from, keeps up
with pyproject's dependencies: every one pinned (with hashes) at a version its bound allows.
build.sh stops on a lock that does not (pip check); this says so without building."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "packaging" / "deb" / "requirements.lock"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, tuple[str, int]]:
    """{name: (version, number of hashes)} of the lock."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in LOCK.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", line):
            name = canonical(match[1])
            found[name] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def release(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(\.\d+)*", version)
    assert match, version
    return tuple(int(part) for part in match[0].split("."))


def test_every_dependency_is_pinned_with_hashes_within_its_bound() -> None:
    locked = pins()
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert dependencies
    for requirement in dependencies:
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9.]+))?", requirement)
        assert match, requirement
        name, lower = canonical(match[1]), match[2]
        assert name in locked, f"{name} is not in {LOCK.name}: run make lock"
        version, hashes = locked[name]
        assert hashes >= 1, f"{name} has no hash in {LOCK.name}"
        if lower:
            assert release(version) >= release(lower), f"{name} {version} is below pyproject's >={lower}: run make lock"


def test_every_pin_has_a_hash() -> None:
    locked = pins()
    assert locked and all(hashes for _, hashes in locked.values()), locked
