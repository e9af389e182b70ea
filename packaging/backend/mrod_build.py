"""mrod's build backend: setuptools, after writing mrod/_version.py from the checkout.

One version for the wheel, `mrod --version` and the Debian package: ``[tool.mrod] release`` in
pyproject.toml (the release being worked on) plus ``.devN+gHASH`` from git, N being the number
of commits in HEAD's history. A later commit has every commit of an earlier one and more, so its
N is larger and its version sorts after (for pip, and for dpkg once packaging/deb/build.sh has
spelt ``.dev`` as ``~dev``). Uncommitted changes add ``.dirty``.

Without git — building from the sdist, which carries the mrod/_version.py written when it was
made — that file is kept as it is; a tree with neither git nor that file cannot be built (there
would be no honest version to give it). A shallow clone is refused too: its commit count is not
the history's.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403  # every hook not overridden below is setuptools' own

ROOT = Path(__file__).resolve().parents[2]
VERSION_FILE = ROOT / "mrod" / "_version.py"


class NoVersion(RuntimeError):
    pass


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def _in_git_checkout() -> bool:
    """True when ROOT is the top of a git work tree (not an sdist unpacked inside another repository)."""
    try:
        return Path(_git("rev-parse", "--show-toplevel")).resolve() == ROOT
    except (OSError, subprocess.CalledProcessError):
        return False


def version_of_checkout() -> str:
    release = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mrod"]["release"]
    if _git("rev-parse", "--is-shallow-repository") == "true":
        raise NoVersion(f"{ROOT} is a shallow clone: its commit count is not the history's, so no version "
                        "can be given (git fetch --unshallow)")
    count = _git("rev-list", "--count", "HEAD")
    commit = _git("rev-parse", "--short=10", "HEAD")
    dirty = ".dirty" if _git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{release}.dev{count}+g{commit}{dirty}"


def write_version() -> str:
    if not _in_git_checkout():
        if VERSION_FILE.exists():
            return VERSION_FILE.read_text()
        raise NoVersion(f"{ROOT} is neither a git checkout nor an sdist with mrod/_version.py: "
                        "build from a clone of the repository (full history) or from mrod's sdist")
    text = ('"""Written by packaging/backend/mrod_build.py when mrod is built or installed; not in git."""\n\n'
            f'__version__ = "{version_of_checkout()}"\n')
    if not VERSION_FILE.exists() or VERSION_FILE.read_text() != text:
        VERSION_FILE.write_text(text)
    return text


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    write_version()
    return build_meta.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    write_version()
    return build_meta.build_sdist(sdist_directory, config_settings)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    write_version()
    return build_meta.build_editable(wheel_directory, config_settings, metadata_directory)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    write_version()
    return build_meta.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Any = None) -> str:
    write_version()
    return build_meta.prepare_metadata_for_build_editable(metadata_directory, config_settings)


# setuptools reads pyproject's dynamic version even to list what it needs to build.
def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    write_version()
    return build_meta.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings: Any = None) -> list[str]:
    write_version()
    return build_meta.get_requires_for_build_sdist(config_settings)


def get_requires_for_build_editable(config_settings: Any = None) -> list[str]:
    write_version()
    return build_meta.get_requires_for_build_editable(config_settings)
