"""The Debian package, for real (issue 12.1): built from the checkout, installed with apt on
this (disposable, root) machine, the unit's ExecStart run as the mrod user with the unit's
environment, a real Postfix looking up through it, upgraded over data, removed, purged."""

from __future__ import annotations

import grp
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from tests.harness import accepts, free_port
from tests.package import debian

pytestmark = pytest.mark.package

STATE = Path("/var/lib/mrod")
CONFIG = Path("/etc/mrod/mrod.toml")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/mrod.service")


def _start(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    cfg = configmod.load(CONFIG, env={})
    log = tmp_path / f"{name}.log"
    proc = debian.Unit.read().popen(log)
    port = int(cfg.lookupd.socketmap.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while not accepts(port):
        assert proc.poll() is None, f"ExecStart exited {proc.returncode}:\n{log.read_text()}"
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def _schema_version() -> int:
    with sqlite3.connect(STATE / "mrod.db") as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """v1 from the checkout; v2, a higher version, from a copy with one more migration."""
    debian.require_packaging()
    out = tmp_path_factory.mktemp("debs")
    base = debian.REPO.joinpath("pyproject.toml").read_text().split('version = "', 1)[1].split('"', 1)[0]
    v1 = debian.build(debian.REPO, f"{base}+t1", out)
    newer = debian.copy_checkout(tmp_path_factory.mktemp("src") / "mrod")
    (newer / "mrod" / "migrations" / f"{db.SCHEMA_VERSION + 1:04d}_upgrade_probe.sql").write_text(
        "-- added by the package upgrade test\nCREATE TABLE upgrade_probe (id INTEGER PRIMARY KEY);\n")
    v2 = debian.build(newer, f"{base}+t2", out)
    return v1, v2


def test_wheel_and_sdist_are_built_with_the_package(packages: tuple[Path, Path]) -> None:
    out = packages[0].parent
    [sdist] = out.glob("mrod-*.tar.gz")
    assert list(out.glob("mrod-*-py3-none-any.whl"))
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"LICENSE", "postfix-snippets/mrod.service", "postfix-snippets/main.cf", "docs/operations.md",
            "contrib/fail2ban/filter.d/mrod.conf", "packaging/deb/build.sh"} <= names


def test_install_run_upgrade_remove_purge(packages: tuple[Path, Path], tmp_path: Path, postfix_factory,
                                          smtp_sink) -> None:
    v1, v2 = packages
    debian.purge()
    try:
        _lifecycle(v1, v2, tmp_path, postfix_factory, smtp_sink)
    finally:
        debian.purge()


def _lifecycle(v1: Path, v2: Path, tmp_path: Path, postfix_factory, smtp_sink) -> None:
    # -- install ---------------------------------------------------------------------------
    out = debian.apt("install", str(v1)).stdout
    assert debian.installed_version() == v1.name.split("_")[1]
    assert "first-admin-password" in out and "password:" not in out      # never in apt's log
    assert re.search(r"'admin' with the password: \S+", (STATE / "first-admin-password").read_text())
    assert (STATE / "first-admin-password").stat().st_mode & 0o077 == 0
    user = pwd.getpwnam("mrod")
    assert "mrod" in grp.getgrnam("postdrop").gr_mem
    assert os.readlink("/usr/bin/mrod") == "/usr/lib/mrod/venv/bin/mrod"
    assert (STATE / "mrod.db").stat().st_uid == user.pw_uid
    st = CONFIG.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, user.pw_gid, 0o640)
    assert "/etc/mrod/mrod.toml" in subprocess.run(["dpkg-query", "-W", "-f", "${Conffiles}", "mrod"],
                                                   capture_output=True, text=True).stdout
    assert WANTS.is_symlink()                                                # enabled
    verify = subprocess.run(["systemd-analyze", "verify", str(debian.UNIT)], capture_output=True, text=True)
    assert verify.returncode == 0 and "mrod.service" not in verify.stderr, verify.stderr

    # An operator's edit of the conffile (free ports, for this test machine): kept on upgrade.
    text = CONFIG.read_text()
    for old in ("127.0.0.1:10101", "127.0.0.1:10102", "127.0.0.1:8380"):
        text = text.replace(old, f"127.0.0.1:{free_port()}")
    CONFIG.write_text(text + "\n[health]\nenabled = false\n")
    edited = CONFIG.read_text()

    # -- the service, as systemd would run it; Postfix looks up through it ------------------
    proc = _start(tmp_path, "v1")
    try:
        r = debian.as_mrod("relay", "add", "primary", "--host", "127.0.0.1", "--port", str(smtp_sink.port))
        assert r.returncode == 0, r.stderr
        assert debian.as_mrod("domain", "add", "example.com", "--relay", "primary").returncode == 0
        cfg = configmod.load(CONFIG, env={})
        postfix = postfix_factory(cfg)
        assert postfix.rcpt_reply("joe@example.com").code == 250
        assert postfix.rcpt_reply("joe@elsewhere.example").code == 554          # not relayed
        assert postfix.postmap_q("example.com", f"socketmap:inet:{cfg.lookupd.socketmap}:relay_domains")[0] == 0
    finally:
        _stop(proc)
    log = (tmp_path / "v1.log").read_text()
    assert "config /etc/mrod/mrod.toml, database /var/lib/mrod/mrod.db" in log
    assert "postqueue not found" not in log and "Traceback" not in log, log
    before = _schema_version()

    # -- upgrade: data, config and the mrod user kept; the new migration applied --------------
    debian.apt("install", str(v2))
    assert debian.installed_version() == v2.name.split("_")[1]
    assert _schema_version() == before + 1
    assert CONFIG.read_text() == edited
    listed = debian.as_mrod("domain", "list")
    assert listed.returncode == 0 and "example.com" in listed.stdout
    proc = _start(tmp_path, "v2")
    try:
        assert postfix.rcpt_reply("joe@example.com").code == 250
    finally:
        _stop(proc)

    # -- remove keeps data and config; purge removes them --------------------------------------
    debian.apt("remove", "mrod")
    assert not Path("/usr/bin/mrod").exists() and not Path("/usr/lib/mrod").exists()
    assert (STATE / "mrod.db").exists() and CONFIG.read_text() == edited
    debian.apt("purge", "mrod")
    assert not STATE.exists() and not CONFIG.parent.exists() and not WANTS.exists()
