"""A private PostgreSQL for the tests (a pytest plugin), and the per-test database on it.

One cluster per test session: initdb + pg_ctl as the postgres user in a scratch directory
(mode 0700 inside a world-traversable temp dir, as postgres requires), listening on 127.0.0.1
on a free port and on a unix socket there. mrod connects over TCP as the role ``mrod`` with a
password (scram-sha-256), given to it through ``[database] password_file`` — the way an
installation does it; the harness itself administers over the unix socket (trust).

Each test that asks for PostgreSQL gets a fresh database copied from a template
(CREATE DATABASE … TEMPLATE: milliseconds, not a migration run), dropped afterwards.
``mrod_ready`` holds the migrated schema; ``template0``-like ``mrod_empty`` has nothing.
Without Debian's postgresql the tests skip, except under CI (tests.harness.require).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from tests.harness import free_port, require

USER = "postgres"
ROLE = "mrod"


def pg_bin() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


class Cluster:
    """A private PostgreSQL server; ``url(db)`` is what an mrod config names."""

    def __init__(self, bindir: Path) -> None:
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="mrod-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.password_file = self.dir / "password"
        self._names = itertools.count(1)
        self._admin: psycopg.Connection[Any] | None = None

    def _as_postgres(self, *args: str) -> None:
        command = [*(["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []), *args]
        subprocess.run(command, check=True, cwd=self.dir, capture_output=True, timeout=120)

    def start(self, prepared: bool = True) -> None:
        """initdb and start; ``prepared``: also the role ``mrod`` (password in ``password_file``)
        and the template databases tests copy (without: a bare server, as an operator finds it)."""
        os.chmod(self.dir, 0o755)
        self.sock.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam(USER)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            os.chown(self.sock, owner.pw_uid, owner.pw_gid)
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--no-sync",
                          "-E", "UTF8", "--locale", "C", "--auth-local", "trust", "--auth-host", "scram-sha-256")
        self._run_server()
        if not prepared:
            return
        self.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        self.password_file.write_text(self.password + "\n")
        self.admin(f"CREATE DATABASE mrod_empty OWNER {ROLE}")
        self.admin(f"CREATE DATABASE mrod_ready OWNER {ROLE}")
        asyncio.run(_migrate(self.url("mrod_ready"), str(self.password_file)))

    def _run_server(self) -> None:
        options = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"),
                          "-o", options, "-w", "-t", "60", "start")
        self._admin = psycopg.connect(host=str(self.sock), port=self.port, user=USER, dbname="postgres",
                                      autocommit=True)

    def pause(self) -> None:
        """Stop the server, keeping its data (an outage); ``resume`` starts it again."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run_server()

    def processes(self) -> list[int]:
        """The postmaster (first) and its children (backends, checkpointer, walwriter…)."""
        master = int((self.data / "postmaster.pid").read_text().split()[0])
        found = [master]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, not ")"
                    ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == master:
                    found.append(int(entry.name))
        return found

    def freeze(self) -> None:
        """A hung server (SIGSTOP to every process, the postmaster first: it forks no new
        backend while stopped): the kernel still accepts connections, nothing answers — what
        a partition looks like to a client. ``thaw`` lets it go on."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:    # a backend that ended meanwhile
                pass

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        assert self._admin is not None
        cur = self._admin.execute(sql.encode())  # harness-made SQL, no input
        return cur.fetchall() if cur.description else []

    def url(self, dbname: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database of its own for one test; returns its name."""
        name = f"t{next(self._names)}"
        # FILE_COPY: half the time of the default WAL_LOG for a small template (measured 0.13 vs 0.24 s)
        self.admin(f"CREATE DATABASE {name} TEMPLATE {'mrod_ready' if migrated else 'mrod_empty'} OWNER {ROLE}"
                   " STRATEGY FILE_COPY")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if (self.data / "postmaster.pid").exists():
            self.thaw()     # a frozen server cannot stop
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


async def _migrate(url: str, password_file: str) -> None:
    from mrod.infra import db
    from mrod.infra.engine import Target

    async with db.opened(Target(url=url, password_file=password_file), create=True):
        pass


_cluster: Cluster | None = None


def cluster() -> Cluster:
    """The session's cluster, started on first use (only runs that need it pay for it)."""
    global _cluster
    if _cluster is None:
        bindir = pg_bin()
        require(bindir is not None and (os.geteuid() != 0 or shutil.which("runuser") is not None),
                "PostgreSQL server not found (apt-get install postgresql, or run `make test` as root)")
        assert bindir is not None
        started = Cluster(bindir)
        try:
            started.start()
        except BaseException:
            started.stop()
            raise
        _cluster = started
    return _cluster


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


@pytest.fixture
def pg_database() -> Iterator[tuple[Cluster, str]]:
    """(cluster, name of a fresh migrated database), dropped after the test."""
    server = cluster()
    name = server.new_database()
    try:
        yield server, name
    finally:
        server.drop_database(name)


@pytest.fixture
def private_cluster() -> Iterator[Cluster]:
    """A PostgreSQL of this test's own, which the test may stop, pause and start (an outage)."""
    cluster()   # skips (or fails under CI) where the session's cannot start either
    bindir = pg_bin()
    assert bindir is not None
    server = Cluster(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_empty_database() -> Iterator[tuple[Cluster, str]]:
    """(cluster, name of a fresh database with no schema), dropped after the test."""
    server = cluster()
    name = server.new_database(migrated=False)
    try:
        yield server, name
    finally:
        server.drop_database(name)


def dump(url: str) -> list[str]:
    """Every row of every table of the database at ``url``, sorted (to compare before/after)."""
    server = cluster()
    lines: list[str] = []
    with psycopg.connect(url, password=server.password, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " ORDER BY table_name")]
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"'.encode()).fetchall()
            lines.extend(sorted(f"{table}: {row!r}" for row in rows))
    return lines
