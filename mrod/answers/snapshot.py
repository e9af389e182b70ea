"""The routing data in memory: what lookupd answers from (no query per lookup) — the index.

A ``RouteSnapshot`` is a ``routing.Store`` like ``RouteStore`` and gives the same rows, so
mrod.answers.routing decides exactly as it does over SQL. It is compact: a domain is one dict entry,
name -> int (its id, and the index of its "shape": relay, override, flags — shared by all
domains routed alike), which keeps 1M domains near 150 MB where row objects took 313 MB.

Recipients of ``listed`` domains: on SQLite they stay in the file (they can be many), and
``listed_recipient`` asks it through ``sql``, an indexed query that is always current. On
PostgreSQL (``recipients=True``) they are in memory too, by domain id, so a lookup never waits
for a round trip and the snapshot answers them while the database is gone.

This module holds the index only (no I/O). Filling it: snapshotsql (everything, from the
database), snapshotjournal (bringing it up to date with journal rows), snapshotfile (lookupd's
JSON file on PostgreSQL).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, cast

from mrod.answers.routestore import DomainRoute
from mrod.answers.snapshotpolicy import PolicyIndex

ID_BITS = 32                 # a domain's packed int: shape index << ID_BITS | domain id
ID_MASK = (1 << ID_BITS) - 1

# (relay_id, host, port, protocol, tls, enabled, include_subdomains, recipients)
Shape = tuple[int | None, str | None, int | None, str | None, str | None, bool, bool, str]
Relay = tuple[str, str, int, str, str]   # name, host, port, protocol, tls


class Recipients(Protocol):
    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None: ...


class RouteSnapshot:
    """The index. Its tables are public for the modules that fill them (snapshotsql,
    snapshotjournal, snapshotfile); nothing else writes them."""

    def __init__(self, sql: Recipients | None = None, recipients: bool = False) -> None:
        self.sql = sql                     # for listed recipients not in memory; set by the holder
        # domain id -> its listed addresses (PostgreSQL), or None: ask ``sql``
        self.listed: dict[int, set[str]] | None = {} if recipients else None
        self.position = 0                  # the journal seq this snapshot includes
        self.max_id = 0                    # the highest domain id it has seen
        self.domains: dict[str, int] = {}
        self.shapes: list[Shape] = []
        self.shape_ids: dict[Shape, int] = {}
        self.relays: dict[int, Relay] = {}
        self.relays_at: dict[tuple[str, int], list[int]] = {}
        # Domains routed by their own host override, by nexthop (for tls_policy).
        self.overrides: dict[tuple[str, int], dict[str, tuple[int, str | None, str | None]]] = {}
        # The policy's fields (snapshotpolicy.py); None: not loaded, the policy reads the database.
        self.policy: PolicyIndex | None = None
        # Destination domain -> its cached MTA-STS/DANE tls_policy answer (mrod.mtasts).
        self.mta_sts: dict[str, str] = {}
        # The domains that include their subdomains (name -> packed, as in ``domains``): a key
        # that is no domain looks only here for a deciding parent (precomputed.py).
        self.wide: dict[str, int] = {}
        # Bumped when the relays or the nexthops of domain overrides change: what answers
        # derived per shape or per nexthop (precomputed.py) must be derived again after.
        self.relays_version = 0
        self.nexthops_version = 0

    def __len__(self) -> int:
        return len(self.domains)

    # -- building -----------------------------------------------------------------------------

    @property
    def recipients_in_memory(self) -> int | None:
        """How many listed recipients memory holds (None: they are asked of ``sql``)."""
        return None if self.listed is None else sum(len(s) for s in self.listed.values())

    def load_domains(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """``put`` for every row, inlined: at 1M rows the per-row call is a third of the load."""
        domains, shapes, shape_ids, overrides = self.domains, self.shapes, self.shape_ids, self.overrides
        wide = self.wide
        for did, name, relay_id, host, port, protocol, tls, enabled, subdomains, recipients in rows:
            shape = (relay_id, host, port, protocol, tls, enabled == 1, subdomains == 1, recipients)
            index = shape_ids.get(shape)
            if index is None:
                index = shape_ids[shape] = len(shapes)
                shapes.append(shape)
            packed = domains[name] = index << ID_BITS | did
            if subdomains == 1:
                wide[name] = packed
            if relay_id is None and host is not None:
                overrides.setdefault((host, port), {})[name] = (did, tls, protocol)
        self.nexthops_version += 1

    def add_recipients(self, rows: Iterable[tuple[Any, ...]]) -> None:
        assert self.listed is not None
        recipients = self.listed
        for did, address in rows:
            found = recipients.get(did)
            if found is None:
                recipients[did] = {address}
            else:
                found.add(address)

    def set_relays(self, rows: Iterable[tuple[Any, ...]]) -> None:
        for rid, name, host, port, protocol, tls in rows:
            self.relays[rid] = (name, host, port, protocol, tls)
        self.relays_at = {}
        for rid in sorted(self.relays):
            r = self.relays[rid]
            self.relays_at.setdefault((r[1], r[2]), []).append(rid)
        self.relays_version += 1

    def put(self, row: tuple[Any, ...]) -> None:
        did, name, relay_id, host, port, protocol, tls, enabled, subdomains, recipients = row
        shape: Shape = (relay_id, host, port, protocol, tls, enabled == 1, subdomains == 1, recipients)
        index = self.shape_ids.get(shape)
        if index is None:
            index = self.shape_ids[shape] = len(self.shapes)
            self.shapes.append(shape)
        packed = self.domains[name] = index << ID_BITS | did
        if subdomains == 1:
            self.wide[name] = packed
        else:
            self.wide.pop(name, None)
        if did > self.max_id:
            self.max_id = did
        if relay_id is None and host is not None:
            self.overrides.setdefault((host, port), {})[name] = (did, tls, protocol)
            self.nexthops_version += 1

    def remove(self, name: str) -> None:
        packed = self.domains.pop(name, None)
        if packed is None:
            return
        self.wide.pop(name, None)
        relay_id, host, port = self.shapes[packed >> ID_BITS][:3]
        if relay_id is None and host is not None and port is not None:
            at = self.overrides.get((host, port))
            if at is not None:
                self.nexthops_version += 1
                at.pop(name, None)
                if not at:
                    del self.overrides[(host, port)]

    # -- routing.Store ------------------------------------------------------------------------

    def domains_named(self, candidates: list[str]) -> dict[str, DomainRoute]:
        found = {}
        get = self.domains.get
        for name in candidates:
            packed = get(name)
            if packed is not None:
                found[name] = self._route(name, packed)
        return found

    def _route(self, name: str, packed: int) -> DomainRoute:
        relay_id, host, port, protocol, tls, enabled, subdomains, recipients = self.shapes[packed >> ID_BITS]
        did = packed & ID_MASK
        if relay_id is None:
            return DomainRoute(did, name, enabled, subdomains, recipients, None, host, port, protocol, tls, False)
        relay = self.relays.get(relay_id)
        if relay is None:   # as the SQL's LEFT JOIN would give it
            return DomainRoute(did, name, enabled, subdomains, recipients, None, host, port, protocol, tls, True)
        rname, rhost, rport, rprotocol, rtls = relay
        return DomainRoute(did, name, enabled, subdomains, recipients, rname, rhost, rport, rprotocol, rtls, True)

    def relay_rows(self) -> list[dict[str, Any]]:
        """Every relay as the health monitor reads them from SQL (id, name, host, port,
        protocol, tls), by name."""
        rows = [dict(id=rid, name=r[0], host=r[1], port=r[2], protocol=r[3], tls=r[4])
                for rid, r in self.relays.items()]
        return sorted(rows, key=lambda r: r["name"])

    def domains_routed_by(self, relay_ids: set[int]) -> dict[int, str]:
        """id -> name of the domains routed through these relays (a full scan: for the rare
        "a relay is back" while the database is gone)."""
        shapes = {i for i, shape in enumerate(self.shapes) if shape[0] in relay_ids}
        return {packed & ID_MASK: name for name, packed in self.domains.items() if packed >> ID_BITS in shapes}

    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None:
        if self.listed is not None:
            found = self.listed.get(domain_id)
            if found:
                for candidate in candidates:
                    if candidate in found:
                        return candidate
            return None
        if self.sql is None:
            raise RuntimeError("snapshot without a database for recipients")
        return self.sql.listed_recipient(domain_id, candidates)

    def mta_sts_answer(self, domain: str) -> str | None:
        return self.mta_sts.get(domain)

    def tls_levels_for(self, host: str, port: int) -> list[tuple[str, str, str]]:
        """As RouteStore.tls_levels_for: relays first, then domain overrides, each by id."""
        at = self.relays_at.get((host, port), ())
        found = [(r[4], r[3], f"relay {r[0]}") for r in (self.relays[i] for i in at)]
        overrides = self.overrides.get((host, port))
        if overrides:
            for _did, name, tls, protocol in sorted((v[0], k, v[1], v[2]) for k, v in overrides.items()):
                found.append((tls or "may", cast(str, protocol), f"domain {name}"))  # as the SQL returns it
        return found
