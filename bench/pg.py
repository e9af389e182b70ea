"""A private PostgreSQL 15 cluster for the ``pgsql:`` map: initdb + pg_ctl as the postgres
user in a scratch directory, listening on 127.0.0.1 on a free port and on a unix socket in
that directory; stopped (and its data removed) afterwards.

The table is what an SQL-map panel keeps: ``domain(name text primary key, enabled boolean)``,
loaded with ``COPY`` from the same names as the mrod database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterable

from . import env

USER = "postgres"
DBNAME = "maps"


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.sockdir = self.dir / "sock"
        self.port = env.free_port()
        self.started = False

    def _as_postgres(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            args = ["runuser", "-u", USER, "--", *args]
        return subprocess.run(args, check=True, cwd=self.dir, **kw)

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        self.sockdir.mkdir()
        if os.geteuid() == 0:
            pw = pwd.getpwnam(USER)
            for path in (self.dir, self.sockdir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._as_postgres([str(env.PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER,
                           "--no-sync", "-E", "UTF8", "--locale", "C"], capture_output=True)
        options = (f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1"
                   " -c max_connections=100 -c fsync=off")
        self._as_postgres([str(env.PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"),
                           "-o", options, "-w", "-t", "60", "start"], capture_output=True)
        self.started = True
        self.psql("postgres", f"CREATE DATABASE {DBNAME}")

    @property
    def postmaster_pid(self) -> int:
        """The server process; each connection's backend is forked from it (and inherits
        its CPU affinity)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def psql(self, database: str, sql: str, stdin: bytes | None = None) -> str:
        out = subprocess.run(
            [str(env.PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir),
             "-p", str(self.port), "-U", USER, "-d", database, "-At", "-c", sql],
            input=stdin, capture_output=True, check=True)
        return out.stdout.decode().strip()

    def load_domains(self, names: Iterable[str]) -> None:
        self.psql(DBNAME, "CREATE TABLE domain (name text PRIMARY KEY, enabled boolean NOT NULL DEFAULT true)")
        data = "".join(f"{n}\tt\n" for n in names).encode()
        self.psql(DBNAME, "COPY domain (name, enabled) FROM STDIN", stdin=data)
        self.psql(DBNAME, "VACUUM ANALYZE domain")

    def stop(self) -> None:
        if self.started:
            self._as_postgres([str(env.PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                              capture_output=True)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
