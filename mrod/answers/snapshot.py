"""The routing data in memory: what lookupd answers from (no query per lookup).

A ``RouteSnapshot`` is a ``routing.Store`` like ``RouteStore`` and gives the same rows, so
mrod.answers.routing decides exactly as it does over SQL. It is compact: a domain is one dict entry,
name -> int (its id, and the index of its "shape": relay, override, flags — shared by all
domains routed alike), which keeps 1M domains near 150 MB where row objects took 313 MB.

Recipients of ``listed`` domains: on SQLite they stay in the file (they can be many), and
``listed_recipient`` asks it through ``sql``, an indexed query that is always current. On
PostgreSQL (``recipients=True``) they are in memory too, by domain id, so a lookup never waits
for a round trip and the snapshot answers them while the database is gone; a recipient added
or removed writes a journal row for its domain (``journal.domain_changed``), and re-reading a
domain re-reads its recipients.

``load`` reads everything and the journal position in one read transaction; ``apply`` brings
the snapshot up to date with journal rows by re-reading the current rows they name (so applying
a change twice, or one that a later commit superseded, converges on the database's state).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Protocol, cast

from mrod.infra.dbapi import SyncConnection
from mrod.answers.routestore import DomainRoute
from mrod.infra import journal
from mrod.infra.engine import Target

if TYPE_CHECKING:
    from mrod.infra.config import Config

# lookupd on PostgreSQL keeps its snapshot in this file, in the node's state directory (the
# directory of [database] path): lookupd/pgholder.py writes it; ``read_file`` reads it.
FILE = "lookupd-snapshot.json"

_ID_BITS = 32
_ID_MASK = (1 << _ID_BITS) - 1
_DOMAIN_COLUMNS = "id, name, relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients"
_RELAY_COLUMNS = "id, name, host, port, protocol, tls"
_CHUNK = 500

# (relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients)
Shape = tuple[int | None, str | None, int | None, str | None, str | None, bool, bool, str]
Relay = tuple[str, str, int, str, str]   # name, host, port, protocol, tls


class Pending(NamedTuple):
    """What journal rows named, as read from the database: to ``install`` into a snapshot."""

    names: list[str]                     # domains to drop, then put back from ``rows``
    rows: list[tuple[Any, ...]]          # their current rows (absent: removed)
    relays: list[tuple[Any, ...]] | None  # every relay, when a relay changed
    position: int
    recipients: list[tuple[int, str]] | None = None   # (domain id, address) of the named domains


def read_changes(conn: Any, changes: list[journal.Change], position: int | None = None,
                 recipients: bool = False) -> Pending:
    """Read the current rows the changes name (``conn``: sqlite3's or pgread's), with the named
    domains' recipients when ``recipients``."""
    names = list({c.key for c in changes if c.entity == journal.DOMAIN and c.key is not None})
    relay_ids = {int(c.key) for c in changes if c.entity == journal.RELAY and c.key is not None}
    rows: list[tuple[Any, ...]] = []
    listed: list[tuple[int, str]] | None = [] if recipients else None
    for start in range(0, len(names), _CHUNK):
        part = names[start:start + _CHUNK]
        marks = ", ".join("?" * len(part))
        rows.extend(tuple(r) for r in conn.execute(
            f"SELECT {_DOMAIN_COLUMNS} FROM domain WHERE name IN ({marks})", part))
        if listed is not None:
            listed.extend((int(r[0]), r[1]) for r in conn.execute(
                f"SELECT r.domain_id, r.address FROM recipient r JOIN domain d ON d.id = r.domain_id"
                f" WHERE d.name IN ({marks})", part))
    relays = [tuple(r) for r in conn.execute(f"SELECT {_RELAY_COLUMNS} FROM relay")] if relay_ids else None
    if position is None:
        position = changes[-1].seq if changes else 0
    return Pending(names, rows, relays, position, listed)


def file_for(cfg: Config) -> Path:
    """Where this node keeps lookupd's snapshot: its state directory ([node] state_dir)."""
    return cfg.state_dir / FILE


class UnusableFile(ValueError):
    """A snapshot file that is not lookupd's for this database; the message says why."""


def read_file(path: Path, database: str) -> tuple["RouteSnapshot", dict[str, Any]]:
    """The snapshot in ``path`` and the whole state read from it (journal cursor, last sync),
    for the database ``database`` names (Target.describe()). Raises OSError when it cannot be
    read, UnusableFile when it is not one to answer from."""
    with open(path, encoding="utf-8") as fh:
        try:
            state = json.load(fh)
        except ValueError as exc:
            raise UnusableFile(f"not JSON: {exc}") from None
    if not isinstance(state, dict) or state.get("database") != database:
        raise UnusableFile("it is of another database")
    if "recipients" not in state:
        raise UnusableFile("it is from an older mrod (no listed recipients)")
    try:
        return RouteSnapshot.from_state(state), state
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UnusableFile(f"malformed: {exc!r}") from None


def of_node(cfg: Config) -> "RouteSnapshot":
    """This node's lookupd snapshot, from its file (``read_file_cached``): what the jobs route
    from while a shared PostgreSQL is gone. Raises OSError or UnusableFile."""
    return read_file_cached(file_for(cfg), Target.of(cfg.database).describe())


_cached: tuple[tuple[str, str, int, int], "RouteSnapshot"] | None = None


def read_file_cached(path: Path, database: str) -> "RouteSnapshot":
    """``read_file``'s snapshot, read again only when the file changed (size or time): for
    the jobs that route from it while the database is gone, every interval."""
    global _cached
    info = os.stat(path)
    key = (str(path), database, info.st_mtime_ns, info.st_size)
    if _cached is None or _cached[0] != key:
        _cached = (key, read_file(path, database)[0])
    return _cached[1]


class Recipients(Protocol):
    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None: ...


class RouteSnapshot:
    def __init__(self, sql: Recipients | None = None, recipients: bool = False) -> None:
        self.sql = sql                     # for listed recipients not in memory; set by the holder
        # domain id -> its listed addresses (PostgreSQL), or None: ask ``sql``
        self._recipients: dict[int, set[str]] | None = {} if recipients else None
        self.position = 0                  # the journal seq this snapshot includes
        self.max_id = 0                    # the highest domain id it has seen
        self._domains: dict[str, int] = {}
        self._shapes: list[Shape] = []
        self._shape_ids: dict[Shape, int] = {}
        self._relays: dict[int, Relay] = {}
        self._relays_at: dict[tuple[str, int], list[int]] = {}
        # Domains routed by their own host override, by nexthop (for tls_policy).
        self._overrides: dict[tuple[str, int], dict[str, tuple[int, str | None, str | None]]] = {}

    def __len__(self) -> int:
        return len(self._domains)

    # -- building -----------------------------------------------------------------------------

    @property
    def recipients_in_memory(self) -> int | None:
        """How many listed recipients memory holds (None: they are asked of ``sql``)."""
        return None if self._recipients is None else sum(len(s) for s in self._recipients.values())

    @classmethod
    def load(cls, conn: SyncConnection, transaction: bool = True, recipients: bool = False) -> "RouteSnapshot":
        """Everything, as of one moment (one read transaction; ``transaction=False``: the
        caller's, e.g. PostgreSQL's REPEATABLE READ), with every listed recipient when
        ``recipients``."""
        snap = cls(recipients=recipients)
        if transaction:
            conn.execute("BEGIN")
        try:
            snap.position = journal.position(conn)
            snap._set_relays(conn.execute(f"SELECT {_RELAY_COLUMNS} FROM relay"))
            snap.max_id = conn.execute("SELECT coalesce(max(id), 0) FROM domain").fetchone()[0]
            snap._load_domains(conn.execute(f"SELECT {_DOMAIN_COLUMNS} FROM domain"))
            if snap._recipients is not None:
                snap._add_recipients(conn.execute("SELECT domain_id, address FROM recipient"))
        finally:
            if transaction:
                conn.execute("COMMIT")
        return snap

    def apply(self, conn: SyncConnection, changes: list[journal.Change]) -> None:
        """Re-read what the changes name; read everything first, then change memory."""
        self.install(read_changes(conn, changes))

    def install(self, pending: Pending) -> None:
        """Put rows read by ``read_changes`` into memory (no I/O: lookupd on PostgreSQL reads
        in its sync thread and installs on the event loop, between two lookups)."""
        if self._recipients is not None and pending.recipients is not None:
            for name in pending.names:
                packed = self._domains.get(name)
                if packed is not None:
                    self._recipients.pop(packed & _ID_MASK, None)
            for row in pending.rows:
                self._recipients.pop(row[0], None)
            self._add_recipients(pending.recipients)
        for name in pending.names:
            self._remove(name)
        for row in pending.rows:
            self._put(row)
        if pending.relays is not None:
            self._relays.clear()
            self._set_relays(pending.relays)
        self.position = max(self.position, pending.position)

    def state(self) -> dict[str, Any]:
        """Everything, as plain data (copies: safe to serialise in another thread)."""
        state: dict[str, Any] = {
            "position": self.position, "max_id": self.max_id, "domains": dict(self._domains),
            "shapes": [list(s) for s in self._shapes], "relays": [[rid, *r] for rid, r in self._relays.items()]}
        if self._recipients is not None:
            state["recipients"] = {str(did): sorted(found) for did, found in self._recipients.items()}
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "RouteSnapshot":
        """The snapshot ``state()`` described (a KeyError/TypeError/ValueError if malformed)."""
        snap = cls(recipients="recipients" in state)
        snap.position, snap.max_id = int(state["position"]), int(state["max_id"])
        if snap._recipients is not None:
            snap._add_recipients((int(did), str(a)) for did, found in state["recipients"].items() for a in found)
        snap._shapes = [cast(Shape, tuple(s)) for s in state["shapes"]]
        snap._shape_ids = {shape: i for i, shape in enumerate(snap._shapes)}
        snap._set_relays(tuple(r) for r in state["relays"])
        for name, packed in state["domains"].items():
            packed = int(packed)
            relay_id, host, port, protocol, tls = snap._shapes[packed >> _ID_BITS][:5]
            snap._domains[str(name)] = packed
            if relay_id is None and host is not None and port is not None:
                snap._overrides.setdefault((host, port), {})[name] = (packed & _ID_MASK, tls, protocol)
        return snap

    def _load_domains(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """_put for every row, inlined: at 1M rows the per-row call is a third of the load."""
        domains, shapes, shape_ids, overrides = self._domains, self._shapes, self._shape_ids, self._overrides
        for did, name, relay_id, host, port, protocol, tls, enabled, subdomains, recipients in rows:
            shape = (relay_id, host, port, protocol, tls, enabled == 1, subdomains == 1, recipients)
            index = shape_ids.get(shape)
            if index is None:
                index = shape_ids[shape] = len(shapes)
                shapes.append(shape)
            domains[name] = index << _ID_BITS | did
            if relay_id is None and host is not None:
                overrides.setdefault((host, port), {})[name] = (did, tls, protocol)

    def unjournaled(self, conn: SyncConnection, limit: int) -> bool:
        """Take in domains inserted without a journal row (a writer outside mrod's write paths):
        rows with an id above any seen. False when there are more than ``limit`` (reload).
        (Missed: such an insert that reuses the id of a domain removed since the last check.)"""
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM domain").fetchone()[0]
        if newest <= self.max_id:
            # The newest domains were removed: SQLite gives their ids to the next inserts.
            self.max_id = newest
            return True
        rows = conn.execute(f"SELECT {_DOMAIN_COLUMNS} FROM domain WHERE id > ? ORDER BY id LIMIT ?",
                            (self.max_id, limit + 1)).fetchall()
        if len(rows) > limit:
            return False
        for row in rows:
            self._remove(row[1])
            self._put(row)
        return True

    def _add_recipients(self, rows: Iterable[tuple[Any, ...]]) -> None:
        assert self._recipients is not None
        recipients = self._recipients
        for did, address in rows:
            found = recipients.get(did)
            if found is None:
                recipients[did] = {address}
            else:
                found.add(address)

    def _set_relays(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for rid, name, host, port, protocol, tls in rows:
            self._relays[rid] = (name, host, port, protocol, tls)
        self._relays_at = {}
        for rid in sorted(self._relays):
            r = self._relays[rid]
            self._relays_at.setdefault((r[1], r[2]), []).append(rid)

    def _put(self, row: tuple[Any, ...]) -> None:
        did, name, relay_id, host, port, protocol, tls, enabled, subdomains, recipients = row
        shape: Shape = (relay_id, host, port, protocol, tls, enabled == 1, subdomains == 1, recipients)
        index = self._shape_ids.get(shape)
        if index is None:
            index = self._shape_ids[shape] = len(self._shapes)
            self._shapes.append(shape)
        self._domains[name] = index << _ID_BITS | did
        if did > self.max_id:
            self.max_id = did
        if relay_id is None and host is not None:
            self._overrides.setdefault((host, port), {})[name] = (did, tls, protocol)

    def _remove(self, name: str) -> None:
        packed = self._domains.pop(name, None)
        if packed is None:
            return
        relay_id, host, port = self._shapes[packed >> _ID_BITS][:3]
        if relay_id is None and host is not None and port is not None:
            at = self._overrides.get((host, port))
            if at is not None:
                at.pop(name, None)
                if not at:
                    del self._overrides[(host, port)]

    # -- routing.Store ------------------------------------------------------------------------

    def domains_named(self, candidates: list[str]) -> dict[str, DomainRoute]:
        found = {}
        get = self._domains.get
        for name in candidates:
            packed = get(name)
            if packed is not None:
                found[name] = self._route(name, packed)
        return found

    def _route(self, name: str, packed: int) -> DomainRoute:
        relay_id, host, port, protocol, tls, enabled, subdomains, recipients = self._shapes[packed >> _ID_BITS]
        did = packed & _ID_MASK
        if relay_id is None:
            return DomainRoute(did, name, enabled, subdomains, recipients, None, host, port, protocol, tls, False)
        relay = self._relays.get(relay_id)
        if relay is None:   # as the SQL's LEFT JOIN would give it
            return DomainRoute(did, name, enabled, subdomains, recipients, None, host, port, protocol, tls, True)
        rname, rhost, rport, rprotocol, rtls = relay
        return DomainRoute(did, name, enabled, subdomains, recipients, rname, rhost, rport, rprotocol, rtls, True)

    def relay_rows(self) -> list[dict[str, Any]]:
        """Every relay as the health monitor reads them from SQL (id, name, host, port,
        protocol, tls), by name."""
        rows = [dict(id=rid, name=r[0], host=r[1], port=r[2], protocol=r[3], tls=r[4])
                for rid, r in self._relays.items()]
        return sorted(rows, key=lambda r: r["name"])

    def domains_routed_by(self, relay_ids: set[int]) -> dict[int, str]:
        """id -> name of the domains routed through these relays (a full scan: for the rare
        "a relay is back" while the database is gone)."""
        shapes = {i for i, shape in enumerate(self._shapes) if shape[0] in relay_ids}
        return {packed & _ID_MASK: name for name, packed in self._domains.items() if packed >> _ID_BITS in shapes}

    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None:
        if self._recipients is not None:
            found = self._recipients.get(domain_id)
            if found:
                for candidate in candidates:
                    if candidate in found:
                        return candidate
            return None
        if self.sql is None:
            raise RuntimeError("snapshot without a database for recipients")
        return self.sql.listed_recipient(domain_id, candidates)

    def tls_levels_for(self, host: str, port: int) -> list[tuple[str, str, str]]:
        """As RouteStore.tls_levels_for: relays first, then domain overrides, each by id."""
        at = self._relays_at.get((host, port), ())
        found = [(r[4], r[3], f"relay {r[0]}") for r in (self._relays[i] for i in at)]
        overrides = self._overrides.get((host, port))
        if overrides:
            for _did, name, tls, protocol in sorted((v[0], k, v[1], v[2]) for k, v in overrides.items()):
                found.append((tls or "may", cast(str, protocol), f"domain {name}"))  # as the SQL returns it
        return found
