"""The Debian package, for real: built from a clone of the checkout, installed with apt on this
(disposable, root) machine, the unit's ExecStart run as the mrod user with the unit's groups,
umask and environment, a real Postfix looking up through it, upgraded to the package of a later
commit over data, removed, purged."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from mrod.infra import config as configmod
from tests.harness import accepts, free_port
from tests.harness.socketunit import AcceptingSocket, read_unit
from tests.package import debian

pytestmark = pytest.mark.package

STATE = Path("/var/lib/mrod")
CONFIG = Path("/etc/mrod/mrod.toml")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/mrod.service")
UNITS = Path("/lib/systemd/system")
HELPER_WANTS = Path("/etc/systemd/system/sockets.target.wants/mrod-postsuper.socket")


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


def test_wheel_and_sdist_are_built_with_the_package(debs: tuple[Path, Path]) -> None:
    out = debs[0].parent
    [sdist] = out.glob("mrod-*.tar.gz")
    [wheel] = out.glob("mrod-*-py3-none-any.whl")
    # One version: the wheel's (built from the sdist, without git) is the .deb's, ".dev" as "~dev".
    version = debian.deb_version(debs[0])
    assert re.fullmatch(r"\d+\.\d+\.\d+~dev\d+\+g[0-9a-f]{10}", version), version
    assert wheel.name.startswith(f"mrod-{version.replace('~dev', '.dev')}-")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"LICENSE", "postfix-snippets/mrod.service", "postfix-snippets/main.cf", "docs/operations.md",
            "contrib/fail2ban/filter.d/mrod.conf", "packaging/deb/build.sh", "packaging/deb/requirements.lock",
            "packaging/backend/mrod_build.py", "mrod/_version.py", "CHANGELOG.md"} <= names


def test_a_later_commit_sorts_after(debs: tuple[Path, Path]) -> None:
    v1, v2 = (debian.deb_version(deb) for deb in debs)
    assert subprocess.run(["dpkg", "--compare-versions", v2, "gt", v1]).returncode == 0, (v1, v2)


def test_depends_names_what_the_unit_and_the_venv_need(debs: tuple[Path, Path]) -> None:
    control = subprocess.run(["dpkg-deb", "-f", str(debs[0]), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    depends = {part.split("(")[0].strip() for part in control.split(",")}
    # The unit's groups exist only with postfix (postdrop); adm is Debian's base-passwd's.
    assert "postfix" in depends
    # The library psycopg loads, as the package's python finds it, belongs to a package it Depends on.
    found = subprocess.run(["/usr/bin/python3", "-c", "import ctypes.util; print(ctypes.util.find_library('pq'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found != "None", "libpq is not installed on this machine"
    path = next(p for p in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout.split()
                if p.endswith("/" + found))
    owner = subprocess.run(["dpkg", "-S", str(Path(path).resolve())], capture_output=True, text=True,
                           check=True).stdout.split(":")[0]
    assert owner in depends, (owner, depends)


def test_install_run_upgrade_remove_purge(debs: tuple[Path, Path], tmp_path: Path, postfix_factory,
                                          smtp_sink) -> None:
    v1, v2 = debs
    debian.purge()
    maillog = Path(tempfile.mkdtemp(prefix="mrod-test-", dir="/var/log"))
    try:
        _lifecycle(v1, v2, tmp_path, maillog, postfix_factory, smtp_sink)
    finally:
        debian.purge()
        shutil.rmtree(maillog)


def _venv_packages() -> dict[str, str]:
    listed = subprocess.run(["/usr/lib/mrod/venv/bin/python", "-c", "from importlib.metadata import distributions\n"
                             "for d in distributions(): print(d.metadata['Name'], d.version)"],
                            capture_output=True, text=True, check=True).stdout
    return {debian.canonical(name): version for name, version in (line.split() for line in listed.splitlines())}


def _lifecycle(v1: Path, v2: Path, tmp_path: Path, maillog: Path, postfix_factory, smtp_sink) -> None:
    # -- install ---------------------------------------------------------------------------
    out = debian.apt("install", str(v1)).stdout
    assert debian.installed_version() == debian.deb_version(v1)
    version = subprocess.run(["mrod", "--version"], capture_output=True, text=True).stdout.split()
    assert version == ["mrod", debian.deb_version(v1).replace("~dev", ".dev")]
    # The venv holds exactly the lock's pins (and mrod): two builds of one commit, the same code.
    installed = _venv_packages()
    assert installed.pop("mrod") == version[1]
    assert installed == debian.lock_pins()
    # psycopg (for [database] url) finds libpq: libpq5 is a Depends.
    pq = subprocess.run(["/usr/lib/mrod/venv/bin/python", "-c", "import psycopg; print(psycopg.pq.version())"],
                        capture_output=True, text=True)
    assert pq.returncode == 0 and int(pq.stdout) >= 100000, pq.stderr
    assert "first-admin-password" in out and "password:" not in out      # never in apt's log
    assert re.search(r"'admin' with the password: \S+", (STATE / "first-admin-password").read_text())
    assert (STATE / "first-admin-password").stat().st_mode & 0o077 == 0
    user = pwd.getpwnam("mrod")
    assert "mrod" in grp.getgrnam("postdrop").gr_mem and "mrod" in grp.getgrnam("adm").gr_mem
    assert set(debian.Unit.read().supplementary) == {"postdrop", "adm"}
    # One mode for the database: the package's and README's restore step's (tests/package/test_readme.py).
    assert (STATE / "mrod.db").stat().st_mode & 0o777 == 0o640
    assert os.readlink("/usr/bin/mrod") == "/usr/lib/mrod/venv/bin/mrod"
    assert (STATE / "mrod.db").stat().st_uid == user.pw_uid
    st = CONFIG.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, user.pw_gid, 0o640)
    assert "/etc/mrod/mrod.toml" in subprocess.run(["dpkg-query", "-W", "-f", "${Conffiles}", "mrod"],
                                                   capture_output=True, text=True).stdout
    assert WANTS.is_symlink()                                                # enabled
    verify = subprocess.run(["systemd-analyze", "verify", str(debian.UNIT)], capture_output=True, text=True)
    assert verify.returncode == 0 and "mrod.service" not in verify.stderr, verify.stderr
    # The postsuper helper's units: installed, valid, the socket enabled.
    helper_units = [str(UNITS / "mrod-postsuper.socket"), str(UNITS / "mrod-postsuper@.service")]
    verify = subprocess.run(["systemd-analyze", "verify", *helper_units], capture_output=True, text=True)
    assert verify.returncode == 0 and "mrod-postsuper" not in verify.stderr, verify.stderr
    assert HELPER_WANTS.is_symlink()

    # An operator's edit of the conffile (free ports, for this test machine): kept on upgrade.
    text = CONFIG.read_text()
    for old in ("127.0.0.1:10101", "127.0.0.1:10102", "127.0.0.1:8380"):
        text = text.replace(old, f"127.0.0.1:{free_port()}")
    # Postfix's log as Debian's rsyslog keeps it (root:adm 0640): the service must read it.
    maillog.chmod(0o755)                            # as /var/log: anyone may look in
    (maillog / "mail.log").write_text("")
    os.chown(maillog / "mail.log", 0, grp.getgrnam("adm").gr_gid)
    (maillog / "mail.log").chmod(0o640)
    text = text.replace("[postfix]\n", f'[postfix]\nmaillog = "{maillog / "mail.log"}"\n', 1) if "[postfix]\n" in text \
        else text + f'\n[postfix]\nmaillog = "{maillog / "mail.log"}"\n'
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
        _hold_through_the_helper(tmp_path, postfix, cfg)
    finally:
        _stop(proc)
    log = (tmp_path / "v1.log").read_text()
    assert "config /etc/mrod/mrod.toml, database /var/lib/mrod/mrod.db" in log
    assert "postqueue not found" not in log and "Traceback" not in log, log
    assert "cannot read Postfix's log" not in log, log
    for made in STATE.glob("mrod.db*"):            # the WAL too: the unit's UMask
        assert made.stat().st_mode & 0o777 == 0o640, made
    before = _schema_version()

    # -- upgrade: data, config and the mrod user kept; the new migration applied --------------
    debian.apt("install", str(v2))
    assert debian.installed_version() == debian.deb_version(v2)
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
    removed = debian.apt("remove", "mrod")
    assert not Path("/usr/bin/mrod").exists() and not Path("/usr/lib/mrod").exists()
    assert (STATE / "mrod.db").exists() and CONFIG.read_text() == edited
    purged = debian.apt("purge", "mrod")
    for said in (removed, purged):
        assert "warning" not in (said.stdout + said.stderr).lower(), said.stdout + said.stderr
    assert not STATE.exists() and not CONFIG.parent.exists() and not WANTS.exists()
    assert not HELPER_WANTS.exists() and not HELPER_WANTS.is_symlink()


def _hold_through_the_helper(tmp_path: Path, postfix, cfg: configmod.Config) -> None:
    """`mrod queue hold|release` as user mrod with the package's config: postsuper (root's) run by
    the helper, started as the installed units say (tests.harness.socketunit: the socket's
    path, owner, group and mode; the service's ExecStart, NoNewPrivileges, capabilities)."""
    path = Path(read_unit(UNITS / "mrod-postsuper.socket", "Socket")["ListenStream"])
    assert cfg.postfix.postsuper == f"unix:{path}"
    assert debian.as_mrod("relay", "add", "down", "--host", "127.0.0.1", "--port", str(free_port())).returncode == 0
    assert debian.as_mrod("domain", "add", "down.example", "--relay", "down").returncode == 0
    postfix.smtp(["joe@down.example"], b"Subject: held\r\n\r\nwaiting for its primary\r\n")
    [queued] = postfix.wait_for_queue(lambda q: len(q) == 1 and q[0]["queue_name"] == "deferred")
    qid = queued["queue_id"]
    # This test's Postfix is not the system's (no /etc/postfix/main.cf here): its directory.
    env = {"PATH": debian.SYSTEMD_PATH, "LANG": "C.UTF-8", "MROD_POSTFIX_CONFIG_DIR": str(postfix.etc)}

    def as_mrod(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", "mrod", "--", "mrod", *args], capture_output=True, text=True,
                              timeout=60, cwd="/", env=env)

    missing = as_mrod("queue", "hold", qid)
    assert missing.returncode == 1 and "mrod-postsuper.socket" in missing.stderr, missing.stderr
    unit = AcceptingSocket(path, tmp_path / "postsuper.log", group="mrod", snippets=UNITS)
    try:
        assert (path.stat().st_mode & 0o777, path.stat().st_gid) == (0o660, grp.getgrnam("mrod").gr_gid)
        held = as_mrod("queue", "hold", qid)
        assert held.returncode == 0, held.stderr + (tmp_path / "postsuper.log").read_text()
        assert "acted on 1 of 1" in held.stdout and [e["queue_name"] for e in postfix.queue()] == ["hold"]
        # (Its delivery kick, postqueue -i as mrod, may be refused this test's config directory:
        # postqueue takes -c from others than root only for alternate_config_directories.)
        released = as_mrod("queue", "release", qid)
        assert "acted on 1 of 1" in released.stdout, released.stderr
        assert [e["queue_name"] for e in postfix.queue()] != ["hold"]
    finally:
        unit.close()
    postfix.delete_queue()
