"""Relays: the primary mail servers that domains' mail is delivered to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


from mrod.infra.dbapi import Connection, Row
from mrod.entities import audit
from mrod.infra import db, names
from mrod.entities.audit import Actor
from mrod.infra.enums import PROTOCOLS, RELAY_WHEN_PRIMARY_UP, TLS_LEVELS
from mrod.infra.errors import Conflict, ForeignKeyViolation, InUse, InvalidInput, NotFound, UniqueViolation


@dataclass(frozen=True)
class Relay:
    id: int
    name: str
    host: str
    port: int
    protocol: str
    tls: str
    owner_id: int | None
    created_at: str
    updated_at: str
    # Mail for its domains while it is up (a domain may say otherwise): accept or defer.
    when_primary_up: str = "accept"
    domain_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def nexthop(self) -> str:
        return nexthop(self.host, self.port)


def nexthop(host: str, port: int) -> str:
    """Postfix's bracketed nexthop ``[host]:port``: brackets turn off the MX lookup; an IPv6
    address goes inside them as it is (``[2001:db8::1]:25``)."""
    return f"[{host}]:{port}"


def validate(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise relay fields (only those given)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "name":
            out["name"] = names.relay_name(value)
        elif key == "host":
            out["host"] = names.hostname(value)
        elif key == "port":
            out["port"] = names.port(value)
        elif key == "protocol":
            out["protocol"] = names.choice(value, PROTOCOLS, "protocol")
        elif key == "tls":
            out["tls"] = names.choice(value, TLS_LEVELS, "tls")
        elif key == "when_primary_up":
            out["when_primary_up"] = names.choice(value, RELAY_WHEN_PRIMARY_UP, "when_primary_up")
        elif key == "owner_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInput("owner", "must be a user id")
            out["owner_id"] = value
        else:
            raise InvalidInput(key, "is not a relay field")
    return out


_SELECT = (
    "SELECT r.*, (SELECT count(*) FROM domain d WHERE d.relay_id = r.id) AS domain_count FROM relay r"
)


def _relay(row: Row) -> Relay:
    return Relay(**{k: row[k] for k in row.keys()})


async def get(conn: Connection, ref: str | int) -> Relay:
    """By name (case-insensitive) or numeric id."""
    arg: int | str
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        sql, arg = f"{_SELECT} WHERE r.id = ?", int(ref)
    else:
        sql, arg = f"{_SELECT} WHERE r.name = ?", ref.strip()
    async with conn.execute(sql, (arg,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"relay {ref!r} does not exist")
    return _relay(row)


async def list_all(conn: Connection, *, owner_id: int | None = None) -> list[Relay]:
    args: tuple[int, ...]
    sql, args = _SELECT, ()
    if owner_id is not None:
        sql, args = f"{_SELECT} WHERE r.owner_id = ?", (owner_id,)
    async with conn.execute(f"{sql} ORDER BY r.name", args) as cur:
        return [_relay(r) for r in await cur.fetchall()]


async def add(
    conn: Connection,
    actor: Actor,
    *,
    name: str,
    host: str,
    port: int | str = 25,
    protocol: str = "smtp",
    tls: str = "may",
    owner_id: int | None = None,
    when_primary_up: str = "accept",
) -> Relay:
    fields = validate(dict(name=name, host=host, port=port, protocol=protocol, tls=tls, owner_id=owner_id,
                           when_primary_up=when_primary_up))
    stamp = db.now()
    async with db.transaction(conn):
        try:
            cur = await conn.execute(
                "INSERT INTO relay (name, host, port, protocol, tls, owner_id, when_primary_up, created_at, updated_at)"
                " VALUES (:name, :host, :port, :protocol, :tls, :owner_id, :when_primary_up, :stamp, :stamp)"
                " RETURNING id",
                {**fields, "stamp": stamp},
            )
        except UniqueViolation:
                raise Conflict(f"relay {fields['name']!r} already exists") from None
        except ForeignKeyViolation:
            raise InvalidInput("owner", "no such user") from None
        relay = await get(conn, await db.returned_id(cur))
        await audit.record(conn, actor, "add", "relay", relay.name, None, _audited(relay))
    return relay


async def update(conn: Connection, actor: Actor, ref: str | int, changes: Mapping[str, Any]) -> Relay:
    fields = validate(changes)
    async with db.transaction(conn):
        before = await get(conn, ref)
        if not fields:
            return before
        assignments = ", ".join(f"{k} = :{k}" for k in fields)
        try:
            await conn.execute(
                f"UPDATE relay SET {assignments}, updated_at = :stamp WHERE id = :id",
                {**fields, "stamp": db.now(), "id": before.id},
            )
        except UniqueViolation:
                raise Conflict(f"relay {fields.get('name')!r} already exists") from None
        except ForeignKeyViolation:
            raise InvalidInput("owner", "no such user") from None
        after = await get(conn, before.id)
        await audit.record(conn, actor, "update", "relay", after.name, _audited(before), _audited(after))
    return after


async def remove(conn: Connection, actor: Actor, ref: str | int, *, reassign_to: str | None = None) -> None:
    """Delete a relay. Refused while domains use it, unless they are moved to ``reassign_to``
    (each domain's move audited as a domain update)."""
    async with db.transaction(conn):
        relay = await get(conn, ref)
        if reassign_to is not None:
            target = await get(conn, reassign_to)
            if target.id == relay.id:
                raise InvalidInput("reassign", "cannot reassign domains to the relay being removed")
            # Imported here: mrod.entities.domains imports this module (a domain's relay).
            from mrod.entities import domains

            # Each domain moves as `mrod domain set NAME --relay TARGET` moves it (validated,
            # audited one row per domain), keeping what decided its route.
            async with conn.execute("SELECT name, route FROM domain WHERE relay_id = ? ORDER BY name",
                                    (relay.id,)) as cur:
                moving = await cur.fetchall()
            for name, route in moving:
                await domains.update(conn, actor, name, relay=target.id, route=route)
        else:
            if relay.domain_count:
                raise InUse(
                    f"relay {relay.name!r} is used by {relay.domain_count} domain(s); move them first"
                    " (or remove with reassignment)"
                )
        await conn.execute("DELETE FROM relay WHERE id = ?", (relay.id,))
        await audit.record(conn, actor, "remove", "relay", relay.name, _audited(relay), None)


def _audited(relay: Relay) -> dict[str, Any]:
    return {k: getattr(relay, k) for k in ("name", "host", "port", "protocol", "tls", "owner_id", "when_primary_up")}
