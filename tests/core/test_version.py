"""The version a build gets (packaging/backend/mrod_build.py), from real git repositories: the
release plus .devN+gCOMMIT, later commits sorting after earlier ones as dpkg compares them
(build.sh spells .dev as ~dev), the sdist's written version kept without git, and no version
at all rather than a wrong one (a shallow clone, a tree with neither)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import require_tool

REPO = Path(__file__).resolve().parents[2]
BACKEND = REPO / "packaging" / "backend" / "mrod_build.py"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost", "GIT_CONFIG_GLOBAL": "/dev/null"}


@pytest.fixture(autouse=True)
def tools() -> None:
    require_tool("git", "git")
    require_tool("dpkg", "dpkg")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=GIT_ENV, capture_output=True, text=True,
                          check=True).stdout.strip()


def source_tree(where: Path) -> Path:
    """What the backend reads: pyproject.toml's release, mrod/ for _version.py, itself."""
    (where / "packaging" / "backend").mkdir(parents=True)
    (where / "mrod").mkdir()
    (where / "mrod" / "__init__.py").write_text("")
    shutil.copy(BACKEND, where / "packaging" / "backend")
    (where / "pyproject.toml").write_text('[tool.mrod]\nrelease = "1.4.0"\n')
    return where


def repository(where: Path) -> Path:
    root = source_tree(where)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    commit(root, "first")
    return root


def commit(root: Path, name: str) -> None:
    (root / f"{name}.txt").write_text(name)
    git(root, "add", f"{name}.txt")
    git(root, "commit", "--quiet", "-m", name)


def version(root: Path) -> subprocess.CompletedProcess[str]:
    """write_version() in a fresh interpreter, as a build runs it; stdout: the version written."""
    script = ("import mrod_build, re; mrod_build.write_version()\n"
              "print(re.search(r'__version__ = \"(.*)\"', mrod_build.VERSION_FILE.read_text()).group(1))")
    return subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                          env={**GIT_ENV, "PYTHONPATH": str(root / "packaging" / "backend")})


def written(root: Path) -> str:
    done = version(root)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def newer(later: str, earlier: str) -> bool:
    debian = [v.replace(".dev", "~dev") for v in (later, earlier)]
    return subprocess.run(["dpkg", "--compare-versions", debian[0], "gt", debian[1]]).returncode == 0


def test_release_plus_commit_count_and_commit(tmp_path: Path) -> None:
    root = repository(tmp_path / "src")
    head = git(root, "rev-parse", "--short=10", "HEAD")
    assert written(root) == f"1.4.0.dev1+g{head}"
    assert newer("1.4.0.dev1+g" + head, "1.3.9") and not newer("1.4.0.dev1+g" + head, "1.4.0")


def test_every_later_commit_sorts_after_even_across_a_merge(tmp_path: Path) -> None:
    root = repository(tmp_path / "src")
    first = written(root)
    commit(root, "second")
    second = written(root)
    assert newer(second, first)
    git(root, "checkout", "--quiet", "-b", "side", "HEAD~1")
    for n in range(3):                  # a longer side branch than main's
        commit(root, f"side{n}")
    side = written(root)
    git(root, "checkout", "--quiet", "main")
    git(root, "merge", "--quiet", "--no-edit", "side")
    merged = written(root)
    assert newer(merged, side) and newer(merged, second)


def test_uncommitted_changes_are_marked(tmp_path: Path) -> None:
    root = repository(tmp_path / "src")
    (root / "first.txt").write_text("changed")
    assert written(root).endswith(".dirty")


def test_a_shallow_clone_gets_no_version(tmp_path: Path) -> None:
    root = repository(tmp_path / "src")
    commit(root, "second")
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{root}", "shallow")
    done = version(tmp_path / "shallow")
    assert done.returncode != 0 and "shallow clone" in done.stderr and "git fetch --unshallow" in done.stderr
    assert not (tmp_path / "shallow" / "mrod" / "_version.py").exists()


def test_without_git_the_sdists_version_is_kept_and_nothing_else_is_made_up(tmp_path: Path) -> None:
    # An unpacked sdist inside some other repository: that repository's history is not mrod's.
    other = repository(tmp_path / "other")
    tree = source_tree(other / "unpacked")
    done = version(tree)
    assert done.returncode != 0 and "neither a git checkout nor an sdist" in done.stderr
    (tree / "mrod" / "_version.py").write_text('__version__ = "1.4.0.dev7+gabcdef0123"\n')
    assert written(tree) == "1.4.0.dev7+gabcdef0123"


def test_the_installed_checkout_says_its_version_from_git() -> None:
    from mrod import __version__

    assert re.fullmatch(r"\d+\.\d+\.\d+\.dev\d+\+g[0-9a-f]{10}(\.dirty)?", __version__), __version__
