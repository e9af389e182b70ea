"""docs/cluster.md, as an operator follows it (issue 11 point 6): the PostgreSQL set-up SQL on a
bare server, `mrod init` and a domain from a first node, then "Adding a node" verbatim on this
machine with the Debian package installed — the new node reads the shared database, its
service starts and follows, and `mrod health` says so. Only `systemctl` (systemd is not PID 1
here) and `editor` (the operator's hands: it writes what the step's comment says) are stood
in for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.harness import free_port, postgres
from tests.package import debian
from tests.package.test_readme import bash

pytestmark = pytest.mark.package

DOC = debian.REPO / "docs" / "cluster.md"
PASSWORD = "a long random password"     # the docs' example, as its SQL sets it


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def fenced(body: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", body, re.S)


@pytest.fixture
def bare_server() -> Iterator[postgres.Cluster]:
    postgres.cluster()     # skips (or fails under CI) where PostgreSQL cannot start
    bindir = postgres.pg_bin()
    assert bindir is not None
    server = postgres.Cluster(bindir)
    try:
        server.start(prepared=False)
        yield server
    finally:
        server.stop()


def test_setting_up_postgresql_and_adding_a_node(bare_server: postgres.Cluster, tmp_path: Path,
                                                 debs: tuple[Path, Path]) -> None:
    debian.require_packaging()
    server = bare_server
    # "Setting up PostgreSQL for mrod": the SQL as the postgres superuser, statement by statement
    # (CREATE DATABASE cannot run inside the transaction a multi-statement string makes).
    [sql] = fenced(section("Setting up PostgreSQL for mrod"), "sql")
    for statement in filter(None, (part.strip() for part in sql.split(";"))):
        server.admin(statement)
    url = f"postgresql://mrod@127.0.0.1:{server.port}/mrod"

    # The first node (this checkout's mrod, its own config): `mrod init`, a relay and a domain.
    first = tmp_path / "first"
    first.mkdir()
    (first / "db-password").write_text(PASSWORD + "\n")
    (first / "mrod.toml").write_text(f'[database]\npath = "{first / "mrod.db"}"\nurl = "{url}"\n'
                                     f'password_file = "{first / "db-password"}"\n[node]\nname = "mx1"\n')
    mrod = [sys.executable, "-m", "mrod", "--config", str(first / "mrod.toml")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MROD_")}
    for args in (["init"], ["relay", "add", "primary", "--host", "mx1.example.net"],
                 ["domain", "add", "example.com", "--relay", "primary"]):
        done = subprocess.run([*mrod, *args], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr

    # This machine becomes the new node: the package installed as README says.
    deb = debs[0]
    debian.purge()
    fake = tmp_path / "bin"
    fake.mkdir()
    try:
        debian.apt("install", str(deb))
        # What the operator types into the two files "editor" opens (the docs' toml, with this
        # test's server for db.example.net, and free ports on this shared machine).
        edits = tmp_path / "edits"
        edits.mkdir()
        (edits / "db-password").write_text(PASSWORD + "\n")
        config = Path("/etc/mrod/mrod.toml").read_text()
        for old in ("127.0.0.1:10101", "127.0.0.1:10102", "127.0.0.1:8380"):
            config = config.replace(old, f"127.0.0.1:{free_port()}")
        config = config.replace('[database]\npath = "/var/lib/mrod/mrod.db"\n',
                                f'[database]\npath = "/var/lib/mrod/mrod.db"\nurl = "{url}"\n'
                                'password_file = "/etc/mrod/db-password"\n', 1)
        assert url in config
        config = config.replace("[checks]\n", "[checks]\nenabled = false\n", 1)   # no DNS from tests
        assert "\n[node]\n" in config      # the package's config has the table (its state_dir)
        config = config.replace("\n[node]\n", '\n[node]\nname = "mx2"\n', 1)
        (edits / "mrod.toml").write_text(config + '\n[health]\nenabled = false\n')
        (fake / "editor").write_text(f'#!/bin/sh\ncat "{edits}/$(basename "$1")" > "$1"\n')
        script = debian.REPO / "tests" / "package" / "fake_systemctl.py"
        (fake / "systemctl").write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
        for tool in ("editor", "systemctl"):
            (fake / tool).chmod(0o755)
        shell = {k: v for k, v in os.environ.items() if not k.startswith(("MROD_", "VIRTUAL_ENV"))}
        shell["PATH"] = ":".join([str(fake), *(p for p in shell["PATH"].split(":") if ".venv" not in p)])
        shell["FAKE_SYSTEMD_STATE"] = str(tmp_path / "systemd")

        [steps] = fenced(section("Adding a node"), "sh")
        printed = bash([line for line in steps.splitlines() if line.strip()], tmp_path, shell, timeout=300)
        assert "OK example.com" in printed                     # read from the shared database
        assert "relay_domains = socketmap:inet:127.0.0.1:" in printed
        password = Path("/etc/mrod/db-password")
        assert password.read_text() == PASSWORD + "\n" and oct(password.stat().st_mode & 0o777) == "0o600"
        assert password.stat().st_uid == debian.pwd_uid("mrod")
        # The service follows the shared database: a change made on the first node is answered here.
        health = _until_fresh()
        assert health.returncode == 0 and "(database reachable)" in health.stdout, health
        done = subprocess.run([*mrod, "domain", "add", "later.example", "--relay", "primary"],
                              capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 20
        while "OK later.example" not in debian.as_mrod("lookup", "relay_domains", "later.example").stdout:
            assert time.monotonic() < deadline, "the new node did not learn the first node's change"
            time.sleep(0.2)
        # ...and it reports itself in the shared table the other nodes' dashboards read.
        deadline = time.monotonic() + 30     # the node status job reports every 10 s
        while "mx2" not in (nodes := subprocess.run([*mrod, "health", "--all-nodes"], capture_output=True,
                                                     text=True, timeout=60, env=env)).stdout:
            assert time.monotonic() < deadline, nodes
            time.sleep(1)
    finally:
        if (fake / "systemctl").exists():
            subprocess.run([str(fake / "systemctl"), "stop", "mrod"], capture_output=True,
                           env={**os.environ, "FAKE_SYSTEMD_STATE": str(tmp_path / "systemd")})
        debian.purge()
        Path("/etc/mrod/db-password").unlink(missing_ok=True)


def _until_fresh() -> subprocess.CompletedProcess[str]:
    """`mrod health` on the node once lookupd has written its first sync status."""
    deadline = time.monotonic() + 20
    while True:
        health = debian.as_mrod("health")
        if "synced" in health.stdout or time.monotonic() > deadline:
            return health
        time.sleep(0.2)
