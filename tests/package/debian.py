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


def build(source: Path, out: Path) -> Path:
    """packaging/deb/build.sh of a git checkout (the version is its own, from git)."""
    result = subprocess.run([str(REPO / "packaging" / "deb" / "build.sh"), str(source), str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    deb = Path(result.stdout.strip().splitlines()[-1])
    assert deb.is_file(), result.stdout
    return deb


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def git(directory: Path, *args: str) -> str:
    """git as a developer runs it (an identity for commits; nothing from the user's own config)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "mrod tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
           "GIT_COMMITTER_NAME": "mrod tests", "GIT_COMMITTER_EMAIL": "tests@localhost", "GIT_CONFIG_GLOBAL": "/dev/null"}
    result = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


# The branches of upstream(): `release`, this checkout as it is; `next`, one commit later, with a
# schema migration (behaviour only the newer code has).
RELEASE, NEXT = "release", "next"


def upstream(target: Path) -> Path:
    """A stand-in for the project's repository: this checkout's full history, its working tree
    committed on top (what is under test may not be committed yet), and a later commit."""
    git(target.parent, "clone", "--quiet", "--no-local", str(REPO), target.name)
    git(target, "checkout", "--quiet", "-B", RELEASE)
    tree = copy_checkout(target.parent / f"{target.name}-tree")
    for path in tree.rglob("*"):
        if path.is_file() or path.is_symlink():
            dest = target / path.relative_to(tree)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest, follow_symlinks=False)
    shutil.rmtree(tree)
    git(target, "add", "--all")
    if git(target, "status", "--porcelain"):
        git(target, "commit", "--quiet", "-m", "the checkout's uncommitted changes, as tested")
    git(target, "checkout", "--quiet", "-b", NEXT)
    probe = target / "mrod" / "migrations" / f"{_schema_version(target) + 1:04d}_upgrade_probe.sql"
    probe.write_text("-- the later commit of the package tests\nCREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY);\n")
    git(target, "add", "--all")
    git(target, "commit", "--quiet", "-m", "a migration only the later commit has")
    git(target, "checkout", "--quiet", RELEASE)
    return target


def _schema_version(checkout: Path) -> int:
    return max(int(p.name[:4]) for p in (checkout / "mrod" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))


def lock_pins() -> dict[str, str]:
    """packaging/deb/requirements.lock as {canonical name: version}."""
    pins = {}
    for line in (REPO / "packaging" / "deb" / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(";")[0].split("==")
            pins[canonical(name)] = version.strip(" \\")
    return pins


def canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


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
        """ExecStart as systemd runs it: the unit's user, groups, umask, environment and directory."""
        command = ["setpriv", f"--reuid={self.user}", f"--regid={self.group}",
                   f"--groups={','.join(self.supplementary) or self.group}"]
        if self.raw.get("NoNewPrivileges") == "yes":
            command.append("--no-new-privs")
        env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", **self.environment}
        with open(log, "wb") as out:
            return subprocess.Popen([*command, *self.exec_start], cwd=self.working_directory, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    umask=int(self.raw.get("UMask", "0022"), 8))


def copy_checkout(target: Path) -> Path:
    """The checkout's sources, without what a developer has made in it (venv, builds, data)."""
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    top = {".git", ".venv", "dist", "build", "var", "mrod.toml"}
    anywhere_files = {"_version.py"}       # written by the build from git; never copied

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(anywhere(directory, names)) | (anywhere_files & set(names))
        return skipped | (top & set(names) if Path(directory) == REPO else set())

    shutil.copytree(REPO, target, ignore=ignore)
    return target


def pwd_uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid
