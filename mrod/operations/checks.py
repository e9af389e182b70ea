"""DNS checks of each domain's backup-MX set-up, with dnspython. Each finding says what to fix.

For a domain, against the resolver of [checks] (the system's by default):

* ``nxdomain`` / ``no-mx`` / ``null-mx`` — senders must find MX records, or they never come here;
* ``not-our-mx`` — one of this host's MX names ([checks] mx_names; or an MX host that resolves
  to one of this host's addresses) must be among them;
* ``preference`` / ``only-mx`` — this host's preference number must be larger than the
  primary's (the lowest among the others), or senders deliver here first;
* ``loop`` — the route's nexthop must not be this host: a relay or host override that resolves
  to one of this host's addresses ([checks] local_addresses; by default the addresses of
  mx_names), or, for a domain routed by its MX records, no MX more preferred than this host
  (Postfix: "mail for X loops back to myself");
* ``sts-mx-missing`` / ``tlsa-missing`` / ``sts-stricter-than-relay`` — the backup's standing in
  the domain's MTA-STS and DANE (mrod.mtasts.findings);
* ``txt-*`` — a ``dns-txt`` domain's TXT record ([bind] txt_prefix) still names an existing relay,
  the one the domain uses.

A DNS failure (timeout, SERVFAIL) is a warning that says so, never a verdict. Results go to the
domain_check table: status ``error`` / ``warning`` / ``ok`` and the findings as JSON, under the
checking node's ``[node] name`` (each node resolves from its own network view).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import dns.asyncresolver

from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.enums import CHECK_STATUSES
from mrod.infra.resolver import DnsLookupFailed, query, txt_relay_refs
from mrod.infra.resolver import make_resolver as dns_resolver
from mrod.operations import certchecks
from mrod.mtasts import dane, findings as tls_findings

LEVELS = {"error": 2, "warning": 1, "info": 0}


@dataclass(frozen=True)
class Finding:
    level: str      # error | warning | info
    code: str
    message: str    # what is wrong
    fix: str        # what to do about it


AddFinding = Callable[[Finding], None]


@dataclass
class DomainCheck:
    domain_id: int
    domain: str
    findings: list[Finding] = field(default_factory=list)
    checked_at: str = ""

    @property
    def status(self) -> str:
        worst = max((LEVELS[f.level] for f in self.findings), default=0)
        return CHECK_STATUSES[worst]

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "status": self.status, "checked_at": self.checked_at,
                "findings": [asdict(f) for f in self.findings]}


@dataclass(frozen=True)
class DomainRow:
    id: int
    name: str
    route: str
    relay_id: int | None
    relay_name: str | None
    host: str | None        # the nexthop host (the relay's, or the domain's override); None: by MX
    port: int | None


class Checker:
    def __init__(self, cfg: Config, resolver: dns.asyncresolver.Resolver | None = None) -> None:
        self.cfg = cfg
        self.settings = cfg.checks
        self.mx_names = set(cfg.checks.mx_names)
        self.resolver = resolver or make_resolver(cfg)
        self._local: set[str] | None = None
        self.tls_known = tls_findings.Known()      # run() reads it once per run
        self.dane_resolver = dane.validating(make_resolver(cfg))

    # -- DNS ------------------------------------------------------------------------------------

    async def query(self, name: str, rdtype: str) -> list[Any] | None:
        """Records, [] when the name has none of that type, None when the name does not exist."""
        return await query(self.resolver, name, rdtype)

    async def addresses(self, host: str) -> set[str] | None:
        """A host's addresses (an IP literal is its own); None if the name does not exist."""
        try:
            return {str(ipaddress.ip_address(host))}
        except ValueError:
            pass
        v4, v6 = await asyncio.gather(self.query(host, "A"), self.query(host, "AAAA"))
        if v4 is None and v6 is None:
            return None
        return {str(ipaddress.ip_address(r.address)) for r in (v4 or []) + (v6 or [])}

    async def local_addresses(self) -> set[str]:
        if self._local is None:
            found = {str(ipaddress.ip_address(a)) for a in self.settings.local_addresses}
            if not found:
                for name in sorted(self.mx_names):
                    try:
                        found |= await self.addresses(name) or set()
                    except DnsLookupFailed:
                        pass
            self._local = found
        return self._local

    # -- one domain -----------------------------------------------------------------------------

    async def check(self, row: DomainRow, relays: dict[str, int]) -> DomainCheck:
        result = DomainCheck(row.id, row.name, checked_at=db.now())
        add = result.findings.append
        try:
            mx = await self._mx_findings(row, add)
            if mx is not None:
                via = None if row.host is None else f"relay {row.relay_name}" if row.relay_name else "its host override"
                await tls_findings.add(self.tls_known, self.dane_resolver, row.name, via,
                                       [host for _, host, ours in mx if ours], self.mx_names, Finding, add)
            if row.host is not None:
                await self._nexthop_loop(row, add)
            elif mx is not None:
                await self._mx_loop(row, mx, add)
            if row.route == "dns-txt":
                await self._txt(row, relays, add)
        except DnsLookupFailed as exc:
            add(Finding("warning", "dns-failure", f"DNS lookup failed: {exc}",
                        f"check that {row.name}'s name servers answer (and [checks] resolver); the check runs again"))
        return result

    async def _mx_findings(self, row: DomainRow, add: AddFinding) -> list[tuple[int, str, bool]] | None:
        """MX records as (preference, host, is this host); None when the checks cannot go on."""
        d = row.name
        records = await self.query(d, "MX")
        example_ours = next(iter(sorted(self.mx_names)), "this-host.example.net")
        if records is None:
            add(Finding("error", "nxdomain", f"{d} does not exist in DNS",
                        f"create the zone {d} (or remove the domain from mrod)"))
            return None
        if not records:
            add(Finding("error", "no-mx", f"{d} has no MX records: senders deliver to its address, never here",
                        f"add MX records: the primary with a low preference (`{d}. MX 10 mail.{d}.`) and this "
                        f"host with a higher one (`{d}. MX 20 {example_ours}.`)"))
            return None
        mx = []
        local = await self.local_addresses()
        for r in records:
            host = r.exchange.to_text(omit_final_dot=True).lower()
            if host in ("", "."):
                add(Finding("error", "null-mx", f"{d} publishes a null MX (`MX 0 .`): it accepts no mail at all",
                            f"replace the null MX with real MX records, or remove {d} from mrod"))
                return None
            ours = host in self.mx_names
            if not ours and local:
                try:
                    ours = bool((await self.addresses(host) or set()) & local)
                except DnsLookupFailed:
                    ours = False    # another MX's name servers failing says nothing about us
            mx.append((int(r.preference), host, ours))
        mx.sort()
        listed = ", ".join(f"{p} {h}" for p, h, _ in mx)
        mine = [m for m in mx if m[2]]
        others = [m for m in mx if not m[2]]
        if not self.mx_names and not local:
            add(Finding("info", "no-mx-names", "this host's MX names are not configured: cannot tell which MX is us",
                        "set [checks] mx_names to the names this host has in MX records"))
            return mx
        if not mine:
            add(Finding("error", "not-our-mx", f"this host ({', '.join(sorted(self.mx_names)) or 'by address'}) is "
                        f"not an MX of {d} (MX: {listed}): senders never deliver here",
                        f"add `{d}. MX {(others[-1][0] + 10) if others else 20} {example_ours}.`"))
            return mx
        ours_pref = mine[0][0]
        if not others:
            level = "error" if row.host is None else "warning"
            add(Finding(level, "only-mx", f"this host is the only MX of {d}: senders deliver everything here "
                        "and no MX names the primary", f"add the primary as an MX with a lower preference, e.g. "
                        f"`{d}. MX {max(ours_pref - 10, 0)} mail.{d}.`"))
            return mx
        primary_pref, primary = others[0][0], others[0][1]
        if ours_pref <= primary_pref:
            same = "the same preference as" if ours_pref == primary_pref else "a lower preference number than"
            add(Finding("error", "preference", f"this host ({mine[0][1]}, MX {ours_pref}) has {same} the primary "
                        f"({primary}, MX {primary_pref}): senders deliver here instead of to the primary",
                        f"give {mine[0][1]} a larger preference number than {primary_pref}, e.g. "
                        f"`{d}. MX {primary_pref + 10} {mine[0][1]}.`"))
        return mx

    async def _nexthop_loop(self, row: DomainRow, add: AddFinding) -> None:
        host = row.host
        assert host is not None
        via = f"relay {row.relay_name}" if row.relay_name else "its host override"
        found = await self.addresses(host)
        if not found:
            add(Finding("error", "nexthop-unresolvable", f"{row.name} is delivered via {via} to {host}, which has "
                        "no address in DNS: the mail stays queued", f"correct the host of {via}"))
            return
        mine = found & await self.local_addresses()
        if mine:
            add(Finding("error", "loop", f"{row.name} is delivered via {via} to {host}, which is this host "
                        f"({', '.join(sorted(mine))}): Postfix would say \"mail for {row.name} loops back to myself\"",
                        f"point {via} at the primary mail server, not at this backup MX"))

    async def _mx_loop(self, row: DomainRow, mx: list[tuple[int, str, bool]], add: AddFinding) -> None:
        # An MX host that resolves to this host counts as ours (see _mx_findings), so a loop by
        # address shows here too: nothing is more preferred than "us".
        mine = [m for m in mx if m[2]]
        if mine and not [m for m in mx if not m[2] and m[0] < mine[0][0]]:
            ours_pref = mine[0][0]
            add(Finding("error", "loop", f"{row.name} is delivered by its MX records, and no MX is more preferred "
                        "than this host: Postfix would say \"mail for {0} loops back to myself\"".format(row.name),
                        f"publish the primary as an MX with a preference number lower than {ours_pref}, or give "
                        f"{row.name} a relay"))
            return

    async def _txt(self, row: DomainRow, relays: dict[str, int], add: AddFinding) -> None:
        records = await self.query(row.name, "TXT") or []
        prefix = self.cfg.bind.txt_prefix
        values = txt_relay_refs(records, prefix)
        if not values:
            add(Finding("error", "txt-missing", f"{row.name} is routed by its TXT record, which is gone "
                        f"(no \"{prefix}...\" TXT)", f"add `{row.name}. TXT \"{prefix}{row.relay_name or 'RELAY'}\"`"
                        " or give the domain a route by hand"))
            return
        if len(values) > 1:
            add(Finding("error", "txt-ambiguous", f"{row.name} has several {prefix} TXT records: "
                        f"{', '.join(sorted(values))}", "keep exactly one"))
            return
        ref = values.pop()
        relay_id = relays.get(ref.lower()) or (int(ref) if ref.isdigit() and int(ref) in relays.values() else None)
        if relay_id is None:
            add(Finding("error", "txt-unknown-relay", f"the TXT record of {row.name} names relay {ref!r}, which "
                        "does not exist", f"create relay {ref!r} (`mrod relay add {ref} --host ...`) or correct "
                        "the TXT record"))
        elif relay_id != row.relay_id:
            add(Finding("warning", "txt-mismatch", f"the TXT record of {row.name} names relay {ref!r}, but the "
                        f"domain is delivered via {row.relay_name or 'no relay'}", "run the BIND import, or "
                        "correct the TXT record"))


def make_resolver(cfg: Config) -> dns.asyncresolver.Resolver:
    c = cfg.checks
    return dns_resolver(c.resolver, c.resolver_port, c.timeout)


# -- runs and results -------------------------------------------------------------------------------

_ROWS = ("SELECT d.id, d.name, d.route, d.relay_id, r.name, coalesce(r.host, d.host), coalesce(r.port, d.port)"
         " FROM domain d LEFT JOIN relay r ON r.id = d.relay_id")


async def run(cfg: Config, conn: Connection, domain: str | None = None,
              checker: Checker | None = None) -> list[DomainCheck]:
    """Check every domain (or one, by its stored name) and store the results."""
    sql, args = (_ROWS + " WHERE d.name = ?", (domain,)) if domain else (_ROWS + " ORDER BY d.name", ())
    async with conn.execute(sql, args) as cur:
        rows = [DomainRow(*r) for r in await cur.fetchall()]
    async with conn.execute("SELECT id, name FROM relay") as cur:
        relays = {r[1].lower(): r[0] for r in await cur.fetchall()}
    checker = checker or Checker(cfg)
    checker.tls_known = await tls_findings.load(conn)
    gate = asyncio.Semaphore(cfg.checks.concurrency)

    async def one(row: DomainRow) -> DomainCheck:
        async with gate:
            return await checker.check(row, relays)

    results = list(await asyncio.gather(*(one(r) for r in rows)))
    # Certificates (issue 22.3): the relays' as this node's health probe saw them, and Postfix's own.
    certs, now = await certchecks.relay_certificates(conn, cfg.node.name), datetime.now(timezone.utc)
    for row, result in zip(rows, results, strict=True):
        if row.relay_id in certs:
            result.findings.extend(certchecks.relay_findings(certs[row.relay_id], now))
    await certchecks.check_host(cfg, conn)
    await store(conn, results, cfg.node.name)
    return results


async def store(conn: Connection, results: list[DomainCheck], node: str) -> None:
    """Keep each result as ``node``'s last check of the domain (each node resolves from its own
    network view). A result from before migration 0007 (node '') is replaced."""
    async with db.transaction(conn):
        if results:
            await conn.executemany("DELETE FROM domain_check WHERE node = '' AND domain_id = ?",
                                   [(r.domain_id,) for r in results])
        await conn.executemany(
            "INSERT INTO domain_check (node, domain_id, status, findings, checked_at)"
            " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM domain WHERE id = ?)"
            " ON CONFLICT (node, domain_id) DO UPDATE SET status = excluded.status, findings = excluded.findings,"
            " checked_at = excluded.checked_at",
            [(node, r.domain_id, r.status, json.dumps([asdict(f) for f in r.findings]), r.checked_at, r.domain_id)
             for r in results])


async def results(conn: Connection, *, owner_id: int | None = None) -> list[dict[str, Any]]:
    """The stored results (each node's last check of each domain), worst first."""
    where, args = ("WHERE d.owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
    async with conn.execute(
        "SELECT d.id, d.name, c.status, c.findings, c.checked_at, c.node FROM domain_check c"
        f" JOIN domain d ON d.id = c.domain_id {where}"
        " ORDER BY CASE c.status WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, d.name, c.node", args) as cur:
        rows = await cur.fetchall()
    return [{"id": r[0], "domain": r[1], "status": r[2], "findings": json.loads(r[3]), "checked_at": r[4],
             "node": r[5]} for r in rows]


async def statuses(conn: Connection, ids: list[int] | None = None) -> dict[int, str]:
    """domain id -> its last check's status, for a column in domain lists (only ``ids``: one page);
    checked by several nodes, the worst of their statuses."""
    args: tuple[int, ...]
    sql, args = "SELECT domain_id, status FROM domain_check", ()
    if ids is not None:
        if not ids:
            return {}       # PostgreSQL refuses an empty IN ()
        sql, args = f"{sql} WHERE domain_id IN ({', '.join('?' * len(ids))})", tuple(ids)
    worst: dict[int, str] = {}
    async with conn.execute(sql, args) as cur:
        for domain_id, status in await cur.fetchall():
            if domain_id not in worst or STATUSES.index(status) < STATUSES.index(worst[domain_id]):
                worst[domain_id] = status
    return worst


# -- reading results for the panel (the why, where the operator looks) ------------------------------

STATUSES = CHECK_STATUSES[::-1]        # worst first: the DNS checks page's order


def _where(owner_id: int | None, status: str | None, q: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if owner_id is not None:
        clauses.append("d.owner_id = ?")
        args.append(owner_id)
    if status in STATUSES:
        clauses.append("c.status = ?")
        args.append(status)
    if q:
        clauses.append("d.name LIKE ? ESCAPE '\\'")
        args.append("%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


async def unchecked(conn: Connection, *, owner_id: int | None = None) -> int:
    """How many domains no node has checked yet (their DNS is not known to be fine)."""
    where, args = _where(owner_id, None, None)
    extra = ((where + " AND" if where else "WHERE")
             + " NOT EXISTS (SELECT 1 FROM domain_check c WHERE c.domain_id = d.id)")
    async with conn.execute(f"SELECT count(*) FROM domain d {extra}", args) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def page(conn: Connection, *, owner_id: int | None = None, status: str | None = None,
               q: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """One page of stored results (worst first, then by name) and how many match in all."""
    where, args = _where(owner_id, status, q)
    async with conn.execute(
        "SELECT d.id, d.name, c.status, c.findings, c.checked_at, c.node FROM domain_check c"
        f" JOIN domain d ON d.id = c.domain_id {where}"
        " ORDER BY CASE c.status WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, d.name, c.node"
        " LIMIT ? OFFSET ?",
        (*args, limit, offset)) as cur:
        rows = await cur.fetchall()
    async with conn.execute(f"SELECT count(*) FROM domain_check c JOIN domain d ON d.id = c.domain_id {where}",
                            args) as cur:
        row = await cur.fetchone()
    total = int(row[0]) if row else 0
    return ([{"id": r[0], "domain": r[1], "status": r[2], "findings": json.loads(r[3]), "checked_at": r[4],
              "node": r[5]} for r in rows], total)


async def result_for(conn: Connection, domain_id: int, node: str) -> dict[str, Any] | None:
    """The node's last check of one domain, or None if it never checked it."""
    async with conn.execute("SELECT status, findings, checked_at FROM domain_check WHERE node = ? AND domain_id = ?",
                            (node, domain_id)) as cur:
        row = await cur.fetchone()
    return None if row is None else {"status": row[0], "findings": json.loads(row[1]), "checked_at": row[2]}


async def summary(conn: Connection, *, owner_id: int | None = None) -> dict[str, int]:
    """How many domains' last check ended in each status ({'error': n, 'warning': n, 'ok': n});
    a domain counts once per status some node found (an error seen from one node is an error)."""
    where, args = _where(owner_id, None, None)
    async with conn.execute(
        f"SELECT c.status, count(DISTINCT c.domain_id) FROM domain_check c JOIN domain d ON d.id = c.domain_id {where}"
        " GROUP BY c.status", args) as cur:
        found = {r[0]: int(r[1]) for r in await cur.fetchall()}
    return {s: found.get(s, 0) for s in STATUSES}
