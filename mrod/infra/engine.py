"""Which database mrod uses: the SQLite file at ``[database] path`` (the embedded default) or
the PostgreSQL database at ``[database] url`` (several nodes sharing one store).

Nothing here imports psycopg: an SQLite-only installation needs neither it nor libpq; the
PostgreSQL modules (pgconn, pgread, copydb) are imported only when a URL is used.

The password never reaches a message or a log: it comes from ``password_file`` (or libpq's
own PGPASSWORD / ~/.pgpass, or the URL itself), and every place that names the database uses
``describe()``, which drops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mrod.infra.errors import DatabaseNotReady

if TYPE_CHECKING:
    from mrod.infra.config import DatabaseConfig

# pg_advisory_xact_lock key taken by every writing transaction on PostgreSQL ("mrod" in ASCII).
WRITE_LOCK_KEY = 0x6D726F64

# libpq options for connections that must notice a vanished server (a partition sends no
# reset): keepalives probe an idle connection; tcp_user_timeout fails a query whose data the
# server's host stops acknowledging. Without them a blocked read waits for the kernel's own
# retransmission limit (about 15 minutes). A URL's own values win.
LIVENESS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
            "tcp_user_timeout": 15000}

_URL_PASSWORD = re.compile(r"(://[^/@:?]*):[^/@?]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")


def redact(url: str) -> str:
    """The URL without any password in it (userinfo or a ``password=`` parameter)."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1@", url))


@dataclass(frozen=True)
class Target:
    """Where to connect: exactly one of ``path`` (SQLite) and ``url`` (PostgreSQL)."""

    path: Path | None = None
    url: str = ""
    password_file: str = ""
    answer_timeout: float = 30.0     # [database] answer_timeout

    @classmethod
    def of(cls, where: Path | str | DatabaseConfig | Target) -> Target:
        if isinstance(where, Target):
            return where
        if isinstance(where, (str, Path)):
            text = str(where)
            if text.startswith(("postgresql://", "postgres://")):
                return cls(url=text)
            return cls(path=Path(where))
        if where.url:
            return cls(url=where.url, password_file=where.password_file, answer_timeout=where.answer_timeout)
        return cls(path=where.path)

    @property
    def engine(self) -> str:
        return "postgresql" if self.url else "sqlite"

    @property
    def shared(self) -> bool:
        """Several nodes may share this store (a database server, not a file of this node's):
        lookupd then answers from a snapshot that follows it (kept on disk, its age reported in
        the sync status file), and each node reports its status for the others' panels. What
        callers ask instead of which engine it is."""
        return bool(self.url)

    def describe(self) -> str:
        """How messages name this database (never with a password)."""
        return redact(self.url) if self.url else str(self.path)

    def connect_options(self, application: str, timeout_s: float) -> dict[str, object]:
        """Keyword arguments for psycopg's connect: the password (if configured), a connect
        timeout, an application name, and LIVENESS where the URL does not set them."""
        found: dict[str, object] = {k: v for k, v in LIVENESS.items() if f"{k}=" not in self.url}
        found.update(connect_timeout=max(2, int(timeout_s)), application_name=application)
        password = self.password()
        if password:
            found["password"] = password
        return found

    def password(self) -> str | None:
        """The password from ``password_file`` (its first line), if one is configured."""
        if not self.password_file:
            return None
        try:
            with open(self.password_file, encoding="utf-8") as fh:
                return fh.readline().rstrip("\r\n")
        except OSError as exc:
            raise DatabaseNotReady(
                f"database.password_file {self.password_file} cannot be read: {exc.strerror}") from None
