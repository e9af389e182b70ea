"""The read side of routing: the few indexed queries mrod.answers.routing needs, on a
synchronous connection of either engine (on SQLite microseconds each, so lookupd can run them on
its event loop).

Nothing here decides anything; mrod.answers.routing does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from mrod.infra.dbapi import SyncConnection
from mrod.infra import db

if TYPE_CHECKING:
    from mrod.infra.db import Where


@dataclass(frozen=True, slots=True)
class DomainRoute:
    id: int
    name: str
    enabled: bool
    include_subdomains: bool
    recipients: str
    relay_name: str | None
    host: str | None
    port: int | None
    protocol: str | None
    tls: str | None
    via_relay: bool


_DOMAINS_SQL = (
    "SELECT d.id, d.name, d.enabled, d.include_subdomains, d.recipients, r.name,"
    " coalesce(r.host, d.host), coalesce(r.port, d.port), coalesce(r.protocol, d.protocol),"
    " coalesce(r.tls, d.tls), d.relay_id IS NOT NULL"
    " FROM domain d LEFT JOIN relay r ON r.id = d.relay_id WHERE d.name IN ({})"
)
_SQL_BY_COUNT = [_DOMAINS_SQL.format(", ".join("?" * n)) for n in range(0, 130)]


class RouteStore:
    def __init__(self, conn: SyncConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, where: Where, busy_timeout_ms: int = 0) -> Self:
        """On whichever engine ``where`` names (db.open_sync chooses: SQLite's read-only file
        connection or a read-only PostgreSQL session)."""
        return cls(db.open_sync(where, busy_timeout_ms / 1000))

    def close(self) -> None:
        self.conn.close()

    def domains_named(self, candidates: list[str]) -> dict[str, DomainRoute]:
        n = len(candidates)
        sql = _SQL_BY_COUNT[n] if n < len(_SQL_BY_COUNT) else _DOMAINS_SQL.format(", ".join("?" * n))
        return {row[1]: DomainRoute(*row) for row in self.conn.execute(sql, candidates)}

    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None:
        """The first of the candidate addresses that is listed for the domain."""
        found = {
            row[0]
            for row in self.conn.execute(
                "SELECT address FROM recipient WHERE domain_id = ?"
                f" AND address IN ({', '.join('?' * len(candidates))})",
                (domain_id, *candidates),
            )
        }
        for candidate in candidates:
            if candidate in found:
                return candidate
        return None

    def mta_sts_answer(self, domain: str) -> str | None:
        """The cached MTA-STS/DANE answer for a domain routed by its MX (migration 0017)."""
        row = self.conn.execute("SELECT answer FROM mta_sts WHERE domain = ?", (domain,)).fetchone()
        return None if row is None else row[0]

    def tls_levels_for(self, host: str, port: int) -> list[tuple[str, str, str]]:
        """(tls level, protocol, who) of every relay and domain override using host:port."""
        return list(
            self.conn.execute(
                "SELECT tls, protocol, 'relay ' || name FROM relay WHERE host = ? AND port = ?"
                " UNION ALL SELECT coalesce(tls, 'may'), protocol, 'domain ' || name FROM domain"
                " WHERE host = ? AND port = ? AND relay_id IS NULL",
                (host, port, host, port),
            )
        )
