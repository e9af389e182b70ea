"""README's "Quick start" and "Production install" run verbatim, in a fresh git clone of the
checkout: `make run`, the CLI steps, then `make deb`, apt, the service, backup, restore, and the
upgrade (`git pull` of a later commit, `make deb`, apt). Only `systemctl` is stood in for (systemd
is not PID 1 on the test machine): tests/package/fake_systemctl.py runs the installed unit's
ExecStart as the unit says."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.harness import accepts, free_port
from tests.package import debian

pytestmark = pytest.mark.package

README = debian.REPO / "README.md"


def _release() -> str:
    return tomllib.loads((debian.REPO / "pyproject.toml").read_text())["tool"]["mrod"]["release"]


def blocks(section: str) -> list[list[str]]:
    """The ```sh blocks of one README section, as lists of command lines."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    return [[ln for ln in block.splitlines() if ln.strip()] for block in re.findall(r"```sh\n(.*?)```", body, re.S)]


def bash(lines: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{lines}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def remote(upstream: Path, tmp_path: Path) -> Path:
    """This test's own copy of the project's repository (bare, as a server holds it): the upgrade
    moves its branch on."""
    debian.git(tmp_path, "clone", "--quiet", "--bare", str(upstream), "upstream.git")
    return tmp_path / "upstream.git"


@pytest.fixture
def clone(remote: Path, tmp_path: Path) -> Path:
    """The operator's checkout: `git clone`, full history, on the release branch."""
    debian.git(tmp_path, "clone", "--quiet", "--branch", debian.RELEASE, str(remote), "mrod")
    return tmp_path / "mrod"


def dpkg_version() -> str:
    shown = subprocess.run(["dpkg", "-s", "mrod"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"^Version: (\S+)$", shown, re.M)
    assert found, shown
    return found.group(1)


def mrod_version() -> str:
    return subprocess.run(["mrod", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def test_quick_start(clone: Path) -> None:
    [start], steps = blocks("Quick start")[0], blocks("Quick start")[1]
    assert start.split("#")[0].strip() == "make run"
    # Free ports on this shared machine: `make run` reads ./mrod.toml when there is one.
    socketmap, panel = free_port(), free_port()
    (clone / "mrod.toml").write_text(f'[lookupd]\nsocketmap = "127.0.0.1:{socketmap}"\n'
                                     f'policy = "127.0.0.1:{free_port()}"\n[admin]\nlisten = "127.0.0.1:{panel}"\n'
                                     "[health]\nenabled = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MROD_", "VIRTUAL_ENV"))}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    log = open(clone / "make-run.log", "wb")
    proc = subprocess.Popen(["bash", "-c", start], cwd=clone, env=env, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (accepts(socketmap) and accepts(panel)):
            assert proc.poll() is None, (clone / "make-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (clone / "make-run.log").read_text()[-3000:]
            time.sleep(0.5)
        out = (clone / "make-run.log").read_text()
        assert re.search(r"'admin' with the password: \S+", out)
        assert not (clone / ".venv" / "bin" / "pytest").exists()         # no test extras for `make run`
        shell = {**env, "PATH": f"{clone / '.venv' / 'bin'}:{env['PATH']}"}
        printed = bash(steps, clone, shell)
        assert "sales@example.org" in printed and "info@example.org" in printed
        assert f"transport_maps = socketmap:inet:127.0.0.1:{socketmap}:transport" in printed
        assert "OK relay:[mx1.example.net]:25" in printed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


def test_production_install(clone: Path, remote: Path, tmp_path: Path) -> None:
    install, first_steps, backup, upgrade = blocks("Production install")
    [restore_mode] = re.findall(r"^install .*-m (0[0-7]{3}) \S+ /var/lib/mrod/mrod.db$", "\n".join(backup), re.M)
    fake = tmp_path / "bin"
    fake.mkdir()
    script = debian.REPO / "tests" / "package" / "fake_systemctl.py"
    (fake / "systemctl").write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    (fake / "systemctl").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MROD_", "VIRTUAL_ENV"))}
    env["PATH"] = ":".join([str(fake), *(p for p in env["PATH"].split(":") if ".venv" not in p)])
    env["FAKE_SYSTEMD_STATE"] = str(tmp_path / "systemd")
    env["DEBIAN_FRONTEND"] = "noninteractive"
    debian.purge()
    try:
        bash(install, clone, env)
        first = dpkg_version()
        assert first.startswith(f"{_release()}~dev{debian.git(clone, 'rev-list', '--count', 'HEAD')}+g")
        assert mrod_version() == f"mrod {first.replace('~dev', '.dev')}"
        # One mode for the database: as the package makes it and as the restore step installs it.
        assert oct(Path("/var/lib/mrod/mrod.db").stat().st_mode & 0o777) == oct(int(restore_mode, 8))
        assert not Path("/var/lib/mrod/first-admin-password").exists()
        # Free ports on this shared machine (the operator's edit of the conffile).
        config = Path("/etc/mrod/mrod.toml")
        text = config.read_text()
        for old in ("127.0.0.1:10101", "127.0.0.1:10102", "127.0.0.1:8380"):
            text = text.replace(old, f"127.0.0.1:{free_port()}")
        config.write_text(text + "\n[health]\nenabled = false\n")
        out = bash(first_steps, clone, env)
        assert "relay_domains = socketmap:inet:127.0.0.1:" in out
        Path("/var/backups").mkdir(exist_ok=True)
        bash(backup, clone, env)
        with sqlite3.connect("/var/backups/mrod.db") as conn:
            assert conn.execute("SELECT name FROM domain").fetchall() == [("example.com",)]
        restored = Path("/var/lib/mrod/mrod.db").stat()
        assert restored.st_uid == debian.pwd_uid("mrod") and restored.st_mode & 0o777 == int(restore_mode, 8)
        with sqlite3.connect("/var/lib/mrod/mrod.db") as conn:
            schema = int(conn.execute("PRAGMA user_version").fetchone()[0])

        # Upstream moves on by one commit (a new migration); README's upgrade installs it.
        debian.git(remote, "update-ref", f"refs/heads/{debian.RELEASE}", f"refs/heads/{debian.NEXT}")
        assert upgrade[0].split("#")[0].strip() == "git pull"
        bash(upgrade, clone, env)
        second = dpkg_version()
        assert subprocess.run(["dpkg", "--compare-versions", second, "gt", first]).returncode == 0, (first, second)
        assert second.startswith(f"{_release()}~dev{debian.git(clone, 'rev-list', '--count', 'HEAD')}+g")
        assert mrod_version() == f"mrod {second.replace('~dev', '.dev')}"
        with sqlite3.connect("/var/lib/mrod/mrod.db") as conn:      # the later commit's code ran
            assert int(conn.execute("PRAGMA user_version").fetchone()[0]) == schema + 1
            assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'upgrade_probe'").fetchall()
        listed = debian.as_mrod("domain", "list")
        assert listed.returncode == 0 and "example.com" in listed.stdout
        assert config.read_text().endswith("[health]\nenabled = false\n")
        assert Path(env["FAKE_SYSTEMD_STATE"], "mrod.pid").exists()         # restarted, running
    finally:
        subprocess.run([str(fake / "systemctl"), "stop", "mrod"], env=env, capture_output=True)
        debian.purge()
        Path("/var/backups/mrod.db").unlink(missing_ok=True)
