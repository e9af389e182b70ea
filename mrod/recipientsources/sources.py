"""The recipient_source table and which domains each source feeds (migration 0012).

The one writer of recipient_source, recipient_source_domain and recipient_source_relay, with
audit rows. A source's URL is stored without credentials (a password in it is refused: it
comes from ``password_file``), so showing a row never shows a secret.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from mrod.entities import audit, domains, relays
from mrod.entities.audit import Actor
from mrod.infra import db
from mrod.infra.dbapi import Connection
from mrod.infra.errors import Conflict, InvalidInput, NotFound, UniqueViolation
from mrod.recipientsources import spec as specs

NONE = "none"          # --recipient-source none: a domain that is fed by no source
INHERIT = "inherit"    # a domain that follows its relay's source (the default)


@dataclass(frozen=True)
class Source:
    id: int
    name: str
    kind: str
    url: str
    base: str | None
    filter: str | None
    attributes: str | None
    starttls: bool
    ca_file: str | None
    bind_dn: str | None
    query: str | None
    format: str | None
    password_file: str | None
    created_at: str
    updated_at: str
    synced_at: str | None
    ok_at: str | None
    addresses: int | None
    ignored: int | None
    domain_counts: str | None
    error: str | None
    failing_since: str | None
    pending: bool
    accept_next: bool

    @property
    def failing(self) -> bool:
        return self.error is not None

    @property
    def per_domain(self) -> dict[str, int]:
        return json.loads(self.domain_counts) if self.domain_counts else {}

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["domain_counts"] = self.per_domain
        out["failing"] = self.failing
        return out


_COLUMNS = ("id, name, kind, url, base, filter, attributes, starttls, ca_file, bind_dn, query, format, password_file,"
            " created_at, updated_at, synced_at, ok_at, addresses, ignored, domain_counts, error, failing_since,"
            " pending, accept_next")


def _source(row: Any) -> Source:
    values = list(row)
    for index in (7, 22, 23):
        values[index] = bool(values[index])
    return Source(*values)


async def get(conn: Connection, name: str) -> Source:
    async with conn.execute(f"SELECT {_COLUMNS} FROM recipient_source WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"recipient source {name!r} does not exist")
    return _source(row)


async def list_all(conn: Connection) -> list[Source]:
    async with conn.execute(f"SELECT {_COLUMNS} FROM recipient_source ORDER BY name") as cur:
        return [_source(r) for r in await cur.fetchall()]


async def add(conn: Connection, actor: Actor, spec: specs.Spec) -> Source:
    stamp = db.now()
    values = spec.columns()
    async with db.transaction(conn):
        try:
            await conn.execute(
                f"INSERT INTO recipient_source ({', '.join(values)}, created_at, updated_at)"
                f" VALUES ({', '.join('?' * len(values))}, ?, ?)", (*values.values(), stamp, stamp))
        except UniqueViolation:
            raise Conflict(f"recipient source {spec.name!r} exists already") from None
        await audit.record(conn, actor, "add", "recipient_source", spec.name, None, values)
        return await get(conn, spec.name)


async def update(conn: Connection, actor: Actor, name: str, spec: specs.Spec) -> Source:
    """Replace how ``name`` is read (its sync state stays; a renamed source keeps its rows)."""
    async with db.transaction(conn):
        before = await get(conn, name)
        values = spec.columns()
        sets = ", ".join(f"{k} = ?" for k in values)
        try:
            await conn.execute(f"UPDATE recipient_source SET {sets}, updated_at = ? WHERE id = ?",
                               (*values.values(), db.now(), before.id))
        except UniqueViolation:
            raise Conflict(f"recipient source {spec.name!r} exists already") from None
        await audit.record(conn, actor, "update", "recipient_source", spec.name,
                           {k: getattr(before, k) for k in values}, values)
        return await get(conn, spec.name)


async def remove(conn: Connection, actor: Actor, name: str) -> None:
    """Remove a source; the domains it fed keep their lists (as hand-added recipients)."""
    async with db.transaction(conn):
        source = await get(conn, name)
        await conn.execute("DELETE FROM recipient_source WHERE id = ?", (source.id,))
        await audit.record(conn, actor, "remove", "recipient_source", source.name, {"url": source.url}, None)


async def accept(conn: Connection, actor: Actor, name: str) -> Source:
    """An operator accepts what a held sync would do: the next sync applies its result as it is."""
    async with db.transaction(conn):
        source = await get(conn, name)
        await conn.execute("UPDATE recipient_source SET accept_next = 1 WHERE id = ?", (source.id,))
        await audit.record(conn, actor, "accept", "recipient_source", source.name, None, {"accept_next": True})
    return source


async def _source_id(conn: Connection, name: str) -> int | None:
    if not name.strip():
        raise InvalidInput("recipient_source", "give a source name, or 'none'")
    if name.strip().lower() == NONE:
        return None
    return (await get(conn, name.strip())).id


async def use_for_domain(conn: Connection, actor: Actor, domain_name: str, source: str) -> None:
    """A domain's own source: a name, ``none`` (fed by none, even when its relay has one), or
    ``inherit`` (its relay's, the default)."""
    async with db.transaction(conn):
        domain = await domains.get(conn, domain_name)
        await conn.execute("DELETE FROM recipient_source_domain WHERE domain_id = ?", (domain.id,))
        if source.strip().lower() != INHERIT:
            await conn.execute("INSERT INTO recipient_source_domain (domain_id, source_id) VALUES (?, ?)",
                               (domain.id, await _source_id(conn, source)))
        await audit.record(conn, actor, "update", "domain", domain.name, None, {"recipient_source": source.strip()})


async def use_for_relay(conn: Connection, actor: Actor, relay_name: str, source: str) -> None:
    """The source of a relay's domains (those without their own choice); ``none`` for no source."""
    async with db.transaction(conn):
        relay = await relays.get(conn, relay_name)
        if source.strip().lower() == INHERIT:
            raise InvalidInput("recipient_source", "a relay takes a source name or 'none'")
        source_id = await _source_id(conn, source)
        await conn.execute("DELETE FROM recipient_source_relay WHERE relay_id = ?", (relay.id,))
        if source_id is not None:
            await conn.execute("INSERT INTO recipient_source_relay (relay_id, source_id) VALUES (?, ?)",
                               (relay.id, source_id))
        await audit.record(conn, actor, "update", "relay", relay.name, None, {"recipient_source": source.strip()})


# A domain's source: its own row when it has one (source_id NULL = none), else its relay's.
_FED = (
    "SELECT d.id, d.name, d.include_subdomains, d.recipients FROM domain d"
    " LEFT JOIN recipient_source_domain own ON own.domain_id = d.id"
    " LEFT JOIN recipient_source_relay viarelay ON viarelay.relay_id = d.relay_id"
    " WHERE (own.domain_id IS NOT NULL AND own.source_id = ?)"
    " OR (own.domain_id IS NULL AND viarelay.source_id = ?)"
)


@dataclass(frozen=True)
class Fed:
    id: int
    name: str
    include_subdomains: bool
    recipients: str


async def fed_domains(conn: Connection, source_id: int) -> list[Fed]:
    async with conn.execute(_FED + " ORDER BY d.name", (source_id, source_id)) as cur:
        return [Fed(r[0], r[1], bool(r[2]), r[3]) for r in await cur.fetchall()]


async def feeding(conn: Connection, domain_id: int, relay_id: int | None) -> Source | None:
    """The source that feeds a domain: its own choice (a row with no source: none), else its
    relay's; None when none does."""
    async with conn.execute("SELECT source_id FROM recipient_source_domain WHERE domain_id = ?", (domain_id,)) as cur:
        own = await cur.fetchone()
    if own is not None:
        source_id = own[0]
    else:
        async with conn.execute("SELECT source_id FROM recipient_source_relay WHERE relay_id = ?",
                                (relay_id,)) as cur:
            via = await cur.fetchone()
        source_id = via[0] if via is not None else None
    if source_id is None:
        return None
    async with conn.execute(f"SELECT {_COLUMNS} FROM recipient_source WHERE id = ?", (source_id,)) as cur:
        row = await cur.fetchone()
    return _source(row) if row is not None else None


# -- sync state (written by mrod.recipientsources.sync) -------------------------------------


async def claim(conn: Connection, source_id: int, node: str, until: str) -> bool:
    """Take the lease to sync a source (several nodes: one syncs at a time); False when
    another node holds a lease that has not run out."""
    async with db.transaction(conn):
        cur = await conn.execute(
            "UPDATE recipient_source SET claim_node = ?, claim_until = ? WHERE id = ?"
            " AND (claim_until IS NULL OR claim_until < ? OR claim_node = ?)", (node, until, source_id, db.now(), node))
        return cur.rowcount == 1


async def release(conn: Connection, source_id: int) -> None:
    async with db.transaction(conn):
        await conn.execute("UPDATE recipient_source SET claim_node = NULL, claim_until = NULL WHERE id = ?",
                           (source_id,))


async def record_failure(conn: Connection, source_id: int, error: str, *, held: bool) -> None:
    """The last list stays: note why (``held``: a result refused for safety, waiting for
    an operator's accept)."""
    stamp = db.now()
    async with db.transaction(conn):
        await conn.execute(
            "UPDATE recipient_source SET synced_at = ?, error = ?, failing_since = coalesce(failing_since, ?),"
            " pending = ? WHERE id = ?", (stamp, error[:1000], stamp, int(held), source_id))


async def record_applied(conn: Connection, source_id: int, total: int, ignored: int, counts: dict[str, int]) -> None:
    stamp = db.now()
    await conn.execute(
        "UPDATE recipient_source SET synced_at = ?, ok_at = ?, addresses = ?, ignored = ?, domain_counts = ?,"
        " error = NULL, failing_since = NULL, pending = 0, accept_next = 0 WHERE id = ?",
        (stamp, stamp, total, ignored, json.dumps(counts, sort_keys=True), source_id))
