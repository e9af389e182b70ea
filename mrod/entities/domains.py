"""Domains: which mail domains this host backs up, and how each one's mail is routed.

A domain is routed in one of three ways, decided here and read by mrod.answers.routing:
  * by a relay (``relay_id``): the relay's host, port, protocol and TLS requirement;
  * by its own override (``host`` [+ port, protocol, tls]);
  * by its own MX records (neither): Postfix looks up the domain's MX itself.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


from mrod.infra.dbapi import Connection, Row
from mrod.entities import audit, relays
from mrod.infra import durations
from mrod.infra import db, enums, journal, names
from mrod.entities.audit import Actor
from mrod.infra.enums import RECIPIENT_POLICIES, ROUTES, SOURCES, VERIFY_WHEN_DOWN, WHEN_PRIMARY_UP
from mrod.infra.errors import Conflict, ForeignKeyViolation, IntegrityViolation, InvalidInput, MrodError, NotFound, \
    UniqueViolation

MAX_QUOTA = 2**63 - 1       # the largest SQLite INTEGER: a larger quota would fail at the write, as a 500
SORTABLE = ("name", "relay", "enabled", "source", "recipients", "created_at", "updated_at")


@dataclass(frozen=True)
class Domain:
    id: int
    name: str
    relay_id: int | None
    relay_name: str | None
    host: str | None
    port: int | None
    protocol: str | None
    tls: str | None
    route: str
    enabled: bool
    include_subdomains: bool
    recipients: str
    source: str
    owner_id: int | None
    created_at: str
    updated_at: str
    # Operating a backup MX (policy service): pause, queue quota, verify fallback.
    paused: bool = False
    pause_reason: str | None = None
    quota_messages: int | None = None
    quota_bytes: int | None = None
    verify_when_down: str = "accept"
    # While the primary is up (issue 20.1): inherit (the relay's), accept, or defer.
    when_primary_up: str = "inherit"
    # Retention (issue 21.3): seconds a message may wait before mrod expires it; None: Postfix's own.
    queue_lifetime: int | None = None

    @property
    def display_name(self) -> str:
        return names.to_unicode(self.name)

    @property
    def route_kind(self) -> str:
        """'relay', 'host' or 'mx' — what the route is, whatever decided it."""
        if self.relay_id is not None:
            return "relay"
        return "host" if self.host is not None else "mx"

    def as_dict(self) -> dict[str, Any]:
        # Every field is a scalar: a shallow dict equals dataclasses.asdict, at a tenth of the
        # cost (it matters to a 100k-line import, which audits every row).
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in dataclasses.fields(Domain))


_SELECT = (
    "SELECT d.id, d.name, d.relay_id, r.name AS relay_name, d.host, d.port, d.protocol, d.tls, d.route,"
    " d.enabled, d.include_subdomains, d.recipients, d.source, d.owner_id, d.created_at, d.updated_at,"
    " d.paused, d.pause_reason, d.quota_messages, d.quota_bytes, d.verify_when_down,"
    " d.when_primary_up, d.queue_lifetime FROM domain d LEFT JOIN relay r ON r.id = d.relay_id"
)


def _domain(row: Row | tuple[Any, ...]) -> Domain:
    values = list(row)
    for index in (9, 10, 16):   # enabled, include_subdomains, paused
        values[index] = bool(values[index])
    return Domain(*values)


async def get(conn: Connection, name: str) -> Domain:
    key = names.domain(name)
    async with conn.execute(f"{_SELECT} WHERE d.name = ?", (key,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"domain {key!r} does not exist")
    return _domain(row)


async def get_by_id(conn: Connection, domain_id: int) -> Domain:
    async with conn.execute(f"{_SELECT} WHERE d.id = ?", (domain_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"domain #{domain_id} does not exist")
    return _domain(row)


@dataclass(frozen=True)
class Page:
    domains: list[Domain]
    total: int


async def search(
    conn: Connection,
    *,
    q: str | None = None,
    enabled: bool | None = None,
    source: str | None = None,
    relay: str | None = None,
    recipients: str | None = None,
    owner_id: int | None = None,
    sort: str = "name",
    descending: bool = False,
    limit: int | None = 50,
    offset: int = 0,
) -> Page:
    """Filtered, sorted, paginated list. ``relay`` is a relay name, or '-' for domains without one."""
    clauses: list[str] = []
    args: list[Any] = []
    if q:
        text = q.strip().lower()
        if not text.isascii():
            try:
                text = names.domain(text, min_labels=1)
            except InvalidInput:
                pass
        clauses.append("d.name LIKE ? ESCAPE '\\'")
        args.append("%" + audit.like_escape(text) + "%")
    if enabled is not None:
        clauses.append("d.enabled = ?")
        args.append(int(enabled))
    if source:
        clauses.append("d.source = ?")
        args.append(names.choice(source, SOURCES, "source"))
    if recipients:
        clauses.append("d.recipients = ?")
        args.append(names.choice(recipients, RECIPIENT_POLICIES, "recipients"))
    if relay == "-":
        clauses.append("d.relay_id IS NULL")
    elif relay:
        clauses.append("d.relay_id = (SELECT id FROM relay WHERE name = ?)")
        args.append(relay)
    if owner_id is not None:
        clauses.append("d.owner_id = ?")
        args.append(owner_id)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    if sort not in SORTABLE:
        raise InvalidInput("sort", f"{sort!r} is not one of {', '.join(SORTABLE)}")
    column = {"relay": "r.name", "name": "d.name"}.get(sort, f"d.{sort}")
    direction = "DESC" if descending else "ASC"
    # NULLs (no relay, no owner) sort as SQLite sorts them on both engines: smallest
    nulls = " NULLS LAST" if descending else " NULLS FIRST"
    order = f" ORDER BY {column} {direction}{nulls}" + ("" if sort == "name" else f", d.name {direction}")
    page_sql = "" if limit is None else " LIMIT ? OFFSET ?"
    page_args = [] if limit is None else [limit, offset]
    async with conn.execute(f"{_SELECT}{where}{order}{page_sql}", (*args, *page_args)) as cur:
        rows = await cur.fetchall()
    async with conn.execute(
        f"SELECT count(*) FROM domain d LEFT JOIN relay r ON r.id = d.relay_id{where}", args
    ) as cur:
        total = (await db.one_row(cur))[0]
    return Page([_domain(r) for r in rows], total)


async def count(conn: Connection, *, owner_id: int | None = None) -> dict[str, int]:
    where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
    async with conn.execute(
        f"SELECT count(*), coalesce(sum(enabled), 0) FROM domain {where}", args
    ) as cur:
        total, enabled = await db.one_row(cur)
    return {"total": total, "enabled": enabled, "disabled": total - enabled}


# -- changes -------------------------------------------------------------------------------


async def _route_fields(conn: Connection, spec: Mapping[str, Any], current: Domain | None) -> dict[str, Any]:
    """Turn route input (relay | host [+port/protocol/tls] | mx) into columns.

    Returns only the columns that change. Exactly one of relay/host/mx may be given.
    """
    chosen = [k for k in ("relay", "host", "mx") if spec.get(k) not in (None, False, "")]
    if len(chosen) > 1:
        raise InvalidInput("route", "give one of a relay, a host, or routing by MX, not several")
    override_only = {k: spec[k] for k in ("port", "protocol", "tls") if spec.get(k) not in (None, "")}
    out: dict[str, Any] = {}
    if chosen == ["relay"]:
        if override_only:
            raise InvalidInput("relay", "port, protocol and TLS come from the relay; set them on the relay")
        relay = await relays.get(conn, spec["relay"])
        out.update(relay_id=relay.id, host=None, port=None, protocol=None, tls=None)
    elif chosen == ["host"]:
        keep = current if current is not None and current.host is not None else None
        out.update(
            relay_id=None,
            host=names.hostname(spec["host"]),
            port=names.port(override_only.get("port", keep.port if keep else 25)),
            protocol=names.choice(override_only.get("protocol", keep.protocol if keep else "smtp"),
                                  enums.PROTOCOLS, "protocol"),
            tls=names.choice(override_only.get("tls", keep.tls if keep else "may"), enums.TLS_LEVELS, "tls"),
        )
    elif chosen == ["mx"]:
        if {"port", "protocol"} & override_only.keys():
            raise InvalidInput("mx", "routing by MX uses port 25 with STARTTLS; port and protocol do not apply")
        out.update(relay_id=None, host=None, port=None, protocol=None,
                   tls=names.choice(override_only.get("tls", "may"), enums.TLS_LEVELS, "tls"))
    elif override_only:
        if current is None:
            raise InvalidInput("route", "give a relay (--relay), a host (--host) or routing by MX (--mx)")
        if current.host is None and not (current.route_kind == "mx" and set(override_only) == {"tls"}):
            raise InvalidInput(
                "port", "this domain takes port and protocol from its relay; give a host to override them"
            )
        for key, value in override_only.items():
            out[key] = names.port(value) if key == "port" else names.choice(
                value, enums.TLS_LEVELS if key == "tls" else enums.PROTOCOLS, key)
    elif current is None:
        raise InvalidInput("route", "give a relay (--relay), a host (--host) or routing by MX (--mx)")
    return out


def _flag_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("enabled", "include_subdomains"):
        if spec.get(key) is not None:
            if not isinstance(spec[key], bool):
                raise InvalidInput(key, "must be true or false")
            out[key] = int(spec[key])
    if spec.get("recipients") is not None:
        out["recipients"] = names.choice(spec["recipients"], RECIPIENT_POLICIES, "recipients")
    if spec.get("source") is not None:
        out["source"] = names.choice(spec["source"], SOURCES, "source")
    if spec.get("route") is not None:
        out["route"] = names.choice(spec["route"], ROUTES, "route")
    if "owner_id" in spec:
        value = spec["owner_id"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput("owner", "must be a user id")
        out["owner_id"] = value
    if spec.get("paused") is not None:
        if not isinstance(spec["paused"], bool):
            raise InvalidInput("paused", "must be true or false")
        out["paused"] = int(spec["paused"])
    if "pause_reason" in spec:
        reason = spec["pause_reason"]
        if reason is not None:
            if not isinstance(reason, str) or len(reason) > 200 or any(ord(c) < 32 for c in reason):
                raise InvalidInput("pause_reason", "must be one line of at most 200 characters")
            reason = reason.strip() or None
        out["pause_reason"] = reason
    elif out.get("paused") == 0:
        out["pause_reason"] = None      # unpausing drops the reason, however it is asked for
    for key in ("quota_messages", "quota_bytes"):
        if key in spec:
            value = spec[key]
            # ASCII digits only: str.isdigit() also passes '²', which int() refuses.
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                value = int(value)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value <= MAX_QUOTA):
                raise InvalidInput(key, f"must be a whole number from 0 (no limit) to {MAX_QUOTA},"
                                        " or empty for the default")
            out[key] = value
    if spec.get("verify_when_down") is not None:
        out["verify_when_down"] = names.choice(spec["verify_when_down"], VERIFY_WHEN_DOWN, "verify_when_down")
    if spec.get("when_primary_up") is not None:
        out["when_primary_up"] = names.choice(spec["when_primary_up"], WHEN_PRIMARY_UP, "when_primary_up")
    if "queue_lifetime" in spec:
        out["queue_lifetime"] = queue_lifetime(spec["queue_lifetime"])
    return out


def queue_lifetime(value: Any) -> int | None:
    """Seconds, from a number or '3d' / '12h' (Postfix's units); None for '', 'default' or None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "default")):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput("queue_lifetime", "must be a duration such as 3d or 12h, or default")
    return durations.parse_duration(value, "queue_lifetime")


def check_settings(spec: Mapping[str, Any]) -> None:
    """Validate the settings beside the route (flags, policy, pause, quotas) as add/update
    would, writing nothing; raises InvalidInput naming the first bad field."""
    _flag_fields(spec)


KNOWN_FIELDS = frozenset(
    {"relay", "host", "port", "protocol", "tls", "mx", "enabled", "include_subdomains", "recipients",
     "source", "route", "owner_id", "paused", "pause_reason", "quota_messages", "quota_bytes",
     "verify_when_down", "when_primary_up", "queue_lifetime"}
)


def _check_known(spec: Mapping[str, Any]) -> None:
    for key in spec:
        if key not in KNOWN_FIELDS:
            raise InvalidInput(key, "is not a domain field")


async def add(conn: Connection, actor: Actor, name: str, **spec: Any) -> Domain:
    """Add a domain. spec: relay | host (+port, protocol, tls) | mx, and the flags."""
    async with db.transaction(conn):
        [domain] = await insert(conn, actor, [await _new_fields(conn, name, spec)])
    return domain


async def _new_fields(conn: Connection, name: str, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A new domain's key and columns from add()'s input, validated."""
    _check_known(spec)
    key = names.domain(name)
    fields: dict[str, Any] = {"relay_id": None, "host": None, "port": None, "protocol": None, "tls": None}
    fields.update(await _route_fields(conn, spec, None))
    fields.update(_flag_fields(spec))
    fields.setdefault("route", "dns-dom" if spec.get("mx") else "relay")
    return key, fields


async def insert(conn: Connection, actor: Actor, rows: list[tuple[str, dict[str, Any]]], *,
                 returning: bool = True) -> list[Domain]:
    """The one write path for new domains (add, add_many, the line import): INSERT each
    (key, validated columns) — one statement per column set — and audit each as add() does,
    the whole row as stored. Inside the caller's transaction; returns them in the given order
    (nothing with ``returning=False``: a 100k-line import need not hold 100k Domains)."""
    stamp = db.now()
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for key, fields in rows:
        groups.setdefault(tuple(fields), []).append((key, *fields.values(), stamp, stamp))
    for columns, values in groups.items():
        listed = ", ".join(["name", *columns, "created_at", "updated_at"])
        try:
            await conn.executemany(
                f"INSERT INTO domain ({listed}) VALUES ({', '.join('?' * (len(columns) + 3))})", values)
        except IntegrityViolation as exc:
            raise _integrity(exc, values[0][0]) from None
    await journal.domains_added(conn, [key for key, _ in rows])   # lookupd's snapshot follows the journal
    added: list[Domain] = []
    for start in range(0, len(rows), 500):      # read back and audit in parts: bounded memory
        part = [key for key, _ in rows[start:start + 500]]
        async with conn.execute(f"{_SELECT} WHERE d.name IN ({', '.join('?' * len(part))})", part) as cur:
            found = {d.name: d for d in map(_domain, await cur.fetchall())}
        ordered = [found[key] for key in part]
        await audit.record_many(conn, actor, "add", "domain", [(d.name, audited(d)) for d in ordered])
        if returning:
            added.extend(ordered)
    return added


@dataclass(frozen=True)
class ImportMark:
    """What the BIND importer notes on a domain beside its fields: since when its zone has been
    missing (None: found again), and whether the importer itself disabled it (so that the zone
    coming back enables it again; None: as it is)."""

    missing_since: str | None
    disabled_by_import: bool | None = None


async def update(conn: Connection, actor: Actor, name: str, *, import_mark: ImportMark | None = None,
                 **spec: Any) -> Domain:
    """The one write path for a domain that exists: validate, write what changed, audit one
    ``update`` row with the domain before and after (and the import mark, when it changed)."""
    _check_known(spec)
    async with db.transaction(conn):
        before = await get(conn, name)
        fields = await _route_fields(conn, spec, before)
        fields.update(_flag_fields(spec))
        if any(spec.get(k) not in (None, False, "") for k in ("relay", "host", "mx")) and "route" not in fields:
            # An operator chose the route by hand: say so, so an importer will not change it.
            fields["route"] = "dns-dom" if spec.get("mx") else "relay"
        changed = {k: v for k, v in fields.items()
                   if getattr(before, k) != (bool(v) if k in ("enabled", "include_subdomains", "paused") else v)}
        marks_before, marks = await _mark_changes(conn, before.id, import_mark)
        if not changed and not marks:
            return before
        # The mark alone is bookkeeping, not a change of the domain: updated_at stays.
        columns = {**changed, **marks, **({"updated_at": db.now()} if changed else {})}
        try:
            await conn.execute(f"UPDATE domain SET {', '.join(f'{k} = ?' for k in columns)} WHERE id = ?",
                               (*columns.values(), before.id))
        except IntegrityViolation as exc:
            raise _integrity(exc, before.name) from None
        if actor.origin in OPERATOR_ORIGINS and changed:
            await _mark_manual(conn, before.id, changed)
        after = await get_by_id(conn, before.id)
        await audit.record(conn, actor, "update", "domain", after.name,
                           audited(before) | {k: marks_before[k] for k in marks}, audited(after) | _shown(marks))
    return after


async def _mark_changes(conn: Connection, domain_id: int, mark: ImportMark | None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the mark's columns as they are, those the new mark changes) — both empty without a mark."""
    if mark is None:
        return {}, {}
    async with conn.execute("SELECT missing_since, disabled_by_import FROM domain WHERE id = ?", (domain_id,)) as cur:
        since, disabled = await db.one_row(cur)
    current = {"missing_since": since, "disabled_by_import": bool(disabled)}
    wanted: dict[str, Any] = {"missing_since": mark.missing_since}
    if mark.disabled_by_import is not None:
        wanted["disabled_by_import"] = mark.disabled_by_import
    changed = {k: (int(v) if k == "disabled_by_import" else v) for k, v in wanted.items() if current[k] != v}
    return current, changed


def _shown(marks: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (bool(v) if k == "disabled_by_import" else v) for k, v in marks.items()}


async def add_many(conn: Connection, actor: Actor,
                   items: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Domain]:
    """Add many domains at once (an importer's first run), each validated as add() validates
    it and written and audited by the same insert, in one transaction. Any refusal refuses
    them all; the error names the domain."""
    async with db.transaction(conn):
        rows: list[tuple[str, dict[str, Any]]] = []
        for name, spec in items:
            try:
                rows.append(await _new_fields(conn, name, spec))
            except InvalidInput as exc:
                raise InvalidInput(exc.field, f"{name}: {exc.message}") from None
        keys = [key for key, _ in rows]
        if len(set(keys)) != len(keys):
            twice = sorted({k for k in keys if keys.count(k) > 1})
            raise Conflict(f"domain {twice[0]!r} is listed twice")
        existing = await existing_names(conn, keys)
        if existing:
            raise Conflict(f"domain {existing[0]!r} already exists")
        return await insert(conn, actor, rows)


async def remove(conn: Connection, actor: Actor, name: str) -> Domain:
    async with db.transaction(conn):
        domain = await get(conn, name)
        await conn.execute("DELETE FROM domain WHERE id = ?", (domain.id,))
        await audit.record(conn, actor, "remove", "domain", domain.name, audited(domain), None)
    return domain


# Changes by these doors are an operator's; the BIND importer never undoes them.
OPERATOR_ORIGINS = ("cli", "panel", "api")


async def _mark_manual(conn: Connection, domain_id: int, changed: Mapping[str, Any]) -> None:
    """Remember which columns an operator set (domain.manual_fields, a JSON list), and that a
    hand-set `enabled` is no longer the importer's doing (disabled_by_import)."""
    async with conn.execute("SELECT manual_fields FROM domain WHERE id = ?", (domain_id,)) as cur:
        row = await cur.fetchone()
    fields = set(json.loads(row[0])) if row and row[0] else set()
    fields.update(changed)
    clear = ", disabled_by_import = 0" if "enabled" in changed else ""
    await conn.execute(f"UPDATE domain SET manual_fields = ?{clear} WHERE id = ?",
                       (json.dumps(sorted(fields)), domain_id))


def _integrity(exc: IntegrityViolation, key: str) -> MrodError:
    if isinstance(exc, UniqueViolation):
        return Conflict(f"domain {key!r} already exists")
    if isinstance(exc, ForeignKeyViolation):
        return InvalidInput("owner", "no such user")
    return InvalidInput("domain", f"refused by the database: {exc}")


def audited(domain: Domain) -> dict[str, Any]:
    data = domain.as_dict()
    for key in ("id", "relay_id", "created_at", "updated_at"):
        data.pop(key)
    return data


async def existing_names(conn: Connection, candidates: list[str]) -> list[str]:
    """Which of these domain names exist already."""
    found: list[str] = []
    chunk = 500
    for start in range(0, len(candidates), chunk):
        part = candidates[start:start + chunk]
        async with conn.execute(
            f"SELECT name FROM domain WHERE name IN ({', '.join('?' * len(part))})", part
        ) as cur:
            found.extend(r[0] for r in await cur.fetchall())
    return found
