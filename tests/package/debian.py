"""Helpers for the Debian package tests: build, install with apt, run the unit's command as
systemd would (User=, Group=, SupplementaryGroups=, Environment=, WorkingDirectory=)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import require, require_root, require_tool

REPO = Path(__file__).resolve().parents[2]
UNIT = Path("/lib/systemd/system/mrod.service")
# The PATH systemd gives services (systemd.exec(5)): postqueue lives in /usr/sbin.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Without MROD_* (MROD_PACKAGE_TESTS among them): the maintainer scripts run mrod, which takes
# an unknown MROD_ variable for a misspelt setting and stops.
APT_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("MROD_")}, "DEBIAN_FRONTEND": "noninteractive"}


def require_packaging() -> None:
    # These tests install mrod system-wide (a user, /etc/mrod, /var/lib/mrod): only where the
    # machine is disposable — CI, or a developer who says so. Under CI they always run.
    if not os.environ.get("CI") and os.environ.get("MROD_PACKAGE_TESTS") != "1":
        pytest.skip("installs the package system-wide: set MROD_PACKAGE_TESTS=1 on a disposable machine")
    require_root("installing a Debian package")
    for tool, package in (("dpkg-deb", "dpkg"), ("apt-get", "apt"), ("systemd-analyze", "systemd"),
                          ("setpriv", "util-linux"), ("runuser", "util-linux")):
        require_tool(tool, package)
    require(_has_venv(), "python3-venv is not installed (apt-get install python3-venv)")


def _has_venv() -> bool:
    return subprocess.run(["/usr/bin/python3", "-c", "import ensurepip, venv"], capture_output=True).returncode == 0


def build(source: Path, version: str, out: Path) -> Path:
    result = subprocess.run([str(REPO / "packaging" / "deb" / "build.sh"), str(source), version, str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    deb = Path(result.stdout.strip().splitlines()[-1])
    assert deb.is_file(), result.stdout
    return deb


def apt(*args: str) -> subprocess.CompletedProcess[str]:
    """apt-get with no terminal to ask on: a conffile prompt would fail the run, not hang it."""
    result = subprocess.run(["apt-get", "-y", "-q", *args], capture_output=True, text=True, timeout=600,
                            env=APT_ENV, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def installed_version() -> str | None:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}", "mrod"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    status, _, version = result.stdout.partition(" ")
    return version.strip() if status.startswith("ii") else None


def purge() -> None:
    if subprocess.run(["dpkg-query", "-W", "mrod"], capture_output=True).returncode == 0:
        apt("purge", "mrod")


def as_mrod(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it on the server (`runuser -u mrod -- mrod …`, from /)."""
    return subprocess.run(["runuser", "-u", "mrod", "--", "mrod", *args], capture_output=True, text=True,
                          timeout=60, cwd="/", env={"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"})


@dataclass
class Unit:
    user: str
    group: str
    supplementary: list[str]
    environment: dict[str, str]
    working_directory: str
    exec_start: list[str]
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path = UNIT) -> "Unit":
        parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
        parser.optionxform = str      # type: ignore[assignment, method-assign]  # keep unit keys case
        parser.read_string(path.read_text())
        service = dict(parser["Service"])
        env = dict(pair.split("=", 1) for pair in shlex.split(service.get("Environment", "")))
        return cls(service["User"], service["Group"], service.get("SupplementaryGroups", "").split(), env,
                   service.get("WorkingDirectory", "/"), shlex.split(service["ExecStart"]), service)

    def popen(self, log: Path) -> subprocess.Popen[bytes]:
        """ExecStart as systemd runs it: the unit's user, groups, environment and directory."""
        command = ["setpriv", f"--reuid={self.user}", f"--regid={self.group}",
                   f"--groups={','.join(self.supplementary) or self.group}"]
        if self.raw.get("NoNewPrivileges") == "yes":
            command.append("--no-new-privs")
        env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", **self.environment}
        with open(log, "wb") as out:
            return subprocess.Popen([*command, *self.exec_start], cwd=self.working_directory, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def copy_checkout(target: Path) -> Path:
    """The checkout's sources, without what a developer has made in it (venv, builds, data)."""
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    top = {".git", ".venv", "dist", "build", "var", "mrod.toml"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(anywhere(directory, names))
        return skipped | (top & set(names) if Path(directory) == REPO else set())

    shutil.copytree(REPO, target, ignore=ignore)
    return target


def pwd_uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid
