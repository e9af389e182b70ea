"""The one place that decides what Postfix is told.

``answer(store, map, key)`` returns what lookupd answers for a map and key — with the reason,
so ``mrod lookup``, the panel's "what Postfix is told" view and lookupd share one code path.
Postfix sends socketmap/tcp tables one key per lookup (never parent domains, never
extension-stripped addresses, never ``@domain``), so parent-domain matching, ``+ext`` stripping
and catch-alls are done here. Keys arrive in any case and possibly as UTF-8 (U-labels).

Database errors are not caught here: the caller (lookupd) turns them into TEMP.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from mrod.infra import names
from mrod.infra.enums import MAPS, TLS_LEVELS
from mrod.answers.routestore import DomainRoute

if TYPE_CHECKING:
    from mrod.infra.config import Config

OK = "OK"
NOTFOUND = "NOTFOUND"
TEMP = "TEMP"

TLS_ORDER: dict[str, int] = {level.value: rank for rank, level in enumerate(TLS_LEVELS)}
# Local parts Postfix never splits at the recipient delimiter.
UNSPLIT_LOCALS = frozenset({"postmaster", "mailer-daemon", "double-bounce"})


@dataclass(frozen=True, slots=True)
class Answer:
    status: str          # OK, NOTFOUND or TEMP
    value: str = ""      # the value for OK, the reason for TEMP
    why: str = ""        # for people: how the answer was reached

    def wire(self) -> str:
        """The socketmap reply text (never a bare 'OK': Postfix 3.7 reads that as not found)."""
        return f"{self.status} {self.value}"


@dataclass(frozen=True)
class Options:
    recipient_delimiter: str = "+"
    relay_transport: str = "relay"
    smtps_transport: str = "mrod-smtps"
    accept_postmaster: bool = True
    # [node] name: the policy's quota and primary state read this node's readings (each node has its own queue).
    node: str = ""

    @classmethod
    def from_config(cls, config: "Config") -> "Options":
        lk = config.lookupd
        return cls(lk.recipient_delimiter, lk.relay_transport, lk.smtps_transport, lk.accept_postmaster,
                   config.node.name)


class Store(Protocol):
    def domains_named(self, candidates: list[str]) -> dict[str, DomainRoute]: ...
    def listed_recipient(self, domain_id: int, candidates: list[str]) -> str | None: ...
    def tls_levels_for(self, host: str, port: int) -> list[tuple[str, str, str]]: ...
    def mta_sts_answer(self, domain: str) -> str | None: ...


DEFAULT_OPTIONS = Options()


def answer(store: Store, map_name: str, key: str, options: Options = DEFAULT_OPTIONS) -> Answer:
    handler = _HANDLERS.get(map_name)
    if handler is None:
        # A Postfix configuration mistake: TEMP keeps mail queued while it is fixed.
        return Answer(TEMP, f"unknown map {map_name!r}", f"mrod serves {', '.join(MAPS)}")
    return handler(store, key, options)


# -- matching ---------------------------------------------------------------------------------


def match(store: Store, name: str) -> tuple[DomainRoute, str] | None:
    """The domain row that decides for ``name``: itself, else the closest parent that includes
    subdomains. Returns (row, how) — the row may be disabled; callers decide what that means."""
    rows = store.domains_named([name, *names.parent_domains(name)])
    key = names.deciding_domain(name, rows, _includes_subdomains) if rows else None
    if key is None:
        return None
    row = rows[key]
    return row, f"domain {row.name}" if key == name else f"subdomain of {row.name} (which includes subdomains)"


def _includes_subdomains(row: DomainRoute) -> bool:
    return row.include_subdomains


def _no_domain(name: str) -> Answer:
    return Answer(NOTFOUND, why=f"{name} is not a domain here (nor a subdomain of one that includes subdomains)")


def _domain_of(address: str) -> str | None:
    at = address.rfind("@")
    return None if at < 0 else names.lookup_domain(address[at + 1:])


# -- the maps ---------------------------------------------------------------------------------


def relay_domains(store: Store, key: str, options: Options) -> Answer:
    name = names.lookup_domain(key)
    if name is None:
        return Answer(NOTFOUND, why=f"{key!r} is not a domain name")
    found = match(store, name)
    if found is None:
        return _no_domain(name)
    row, how = found
    if not row.enabled:
        return Answer(NOTFOUND, why=f"{name}: {how} is disabled")
    return Answer(OK, row.name, f"{name}: relayed as {how}")


def transport(store: Store, key: str, options: Options) -> Answer:
    if key == "*":
        return Answer(NOTFOUND, why="the wildcard key '*' never has a route here")
    name = _domain_of(key)
    if name is None:
        return Answer(NOTFOUND, why=f"{key!r} is not an address (Postfix asks the transport map for user@domain)")
    found = match(store, name)
    if found is None:
        return _no_domain(name)
    row, how = found
    value, route = route_of(row, name, options)
    state = "" if row.enabled else " (disabled: kept so mail already queued still reaches its primary)"
    return Answer(OK, value, f"{name}: {how}{state}, {route}")


def route_of(row: DomainRoute, recipient_domain: str, options: Options) -> tuple[str, str]:
    """The transport:nexthop for a matched domain, and a description of it."""
    if row.host is None:
        return f"{options.relay_transport}:{recipient_domain}", f"routed by the MX records of {recipient_domain}"
    service = options.smtps_transport if row.protocol == "smtps" else options.relay_transport
    via = f"relay {row.relay_name}" if row.via_relay else "its own host override"
    tls = "implicit TLS" if row.protocol == "smtps" else f"STARTTLS {row.tls or 'may'}"
    return f"{service}:[{row.host}]:{row.port}", f"delivered via {via} ({tls})"


def relay_recipients(store: Store, key: str, options: Options) -> Answer:
    address = key.casefold()
    at = address.rfind("@")
    if at < 0:
        return Answer(NOTFOUND, why=f"{key!r} is not an address")
    name = names.lookup_domain(address[at + 1:])
    if name is None:
        return Answer(NOTFOUND, why=f"{key!r} has no usable domain")
    found = match(store, name)
    if found is None:
        return _no_domain(name)
    row, how = found
    if not row.enabled:
        return Answer(NOTFOUND, why=f"{name}: {how} is disabled")
    if row.recipients != "listed":
        # 'verify' domains are accepted here; the policy service checks them against the primary.
        return Answer(OK, row.recipients, f"{name}: {how} accepts every recipient ({row.recipients})")
    # Postfix may send the quoted external form of a local part; we store the internal form.
    candidates = recipient_candidates(names.unquote_local(address[:at]), name, options.recipient_delimiter)
    listed = store.listed_recipient(row.id, candidates)
    if listed is None:
        if postmaster_accepted(names.unquote_local(address[:at]), options):
            return Answer(OK, f"{POSTMASTER}@{name}", f"{name}: {how} lists its recipients; {POSTMASTER_WHY}")
        return Answer(NOTFOUND, why=f"{name}: {how} lists its recipients; none of {', '.join(candidates)} is listed")
    return Answer(OK, listed, f"{name}: {how} lists {listed}")


POSTMASTER = "postmaster"
POSTMASTER_WHY = "postmaster is always accepted (RFC 5321 §4.5.1; [lookupd] accept_postmaster)"


def postmaster_accepted(local: str, options: Options) -> bool:
    """Whether ``local`` (casefolded, unquoted) is the postmaster every relayed domain must
    accept (RFC 5321 §4.5.1) — unless [lookupd] accept_postmaster = false. Exactly
    ``postmaster``: Postfix never splits it at the recipient delimiter either."""
    return options.accept_postmaster and local == POSTMASTER


def recipient_candidates(local: str, domain: str, delimiters: str) -> list[str]:
    """What a listed domain may list for ``local@domain`` (casefolded, internal form), most
    specific first: the address, the address without its +extension (when it has one), and
    the ``@domain`` catch-all. The one builder for relay_recipients and the policy service."""
    base = strip_extension(local, delimiters)
    return [f"{local}@{domain}", *([f"{base}@{domain}"] if base != local else []), f"@{domain}"]


def strip_extension(local: str, delimiters: str) -> str:
    """``user+ext`` -> ``user``: split at the first delimiter character, as Postfix does, but
    never to an empty local part and never for postmaster, mailer-daemon or double-bounce."""
    if not delimiters or local in UNSPLIT_LOCALS:
        return local
    cut = min((i for i in (local.find(d) for d in delimiters) if i > 0), default=0)
    if cut == 0:
        return local
    return local[:cut]


def tls_policy(store: Store, key: str, options: Options) -> Answer:
    if key.startswith("."):
        return Answer(NOTFOUND, why="parent-domain keys carry no policy here")
    if key.startswith("["):
        host_text, _, rest = key[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            return Answer(NOTFOUND, why=f"{key!r} is not a nexthop")
        host = _nexthop_host(host_text)
        if host is None or (port_text and not port_text.isdigit()):
            return Answer(NOTFOUND, why=f"{key!r} is not a nexthop")
        port = int(port_text) if port_text else 25
        holders = store.tls_levels_for(host, port)
        required = [(_effective_tls(lvl, proto), who) for lvl, proto, who in holders]
        required = [(lvl, who) for lvl, who in required if TLS_ORDER[lvl] > 0]
        if not required:
            why = f"[{host}]:{port}: " + ("TLS 'may' (opportunistic)" if holders else "no relay uses this nexthop")
            return Answer(NOTFOUND, why=why)
        # Several relays/domains may share a nexthop: the strictest requirement wins.
        level, who = max(required, key=lambda lw: TLS_ORDER[lw[0]])
        return Answer(OK, level, f"[{host}]:{port}: {who} requires {level}")
    # A bare domain nexthop: a domain routed by its own MX records.
    name = names.lookup_domain(key.rpartition(":")[0] if ":" in key else key)
    if name is None:
        return Answer(NOTFOUND, why=f"{key!r} is not a nexthop")
    found = match(store, name)
    if found is None:
        return _no_domain(name)
    row, how = found
    if row.host is None:
        published = store.mta_sts_answer(name)
        if published is not None:
            level = destination_level(published, row.tls or "may")
            return Answer(OK, level, f"{name}: {how}; the destination publishes {_published_why(published)}")
    if row.host is not None or TLS_ORDER.get(row.tls or "may", 0) == 0:
        return Answer(NOTFOUND, why=f"{name}: {how} requires no TLS when routed by MX")
    return Answer(OK, row.tls or "may", f"{name}: {how} requires {row.tls} on its MX hosts")


def destination_level(published: str, own: str) -> str:
    """The answer for a domain routed by its MX whose destination publishes DANE or an enforce
    MTA-STS policy (``published``, from mrod.mtasts), given the domain's own TLS setting: the
    published one is at least as strict; over a mandatory own level, DANE may not fall back to
    plain opportunistic TLS (``dane-only``)."""
    if published == "dane" and TLS_ORDER.get(own, 0) > 0:
        return "dane-only"
    return published


def _published_why(published: str) -> str:
    if published == "dane":
        return "TLSA records under DNSSEC (DANE, RFC 7672)"
    return "an enforce MTA-STS policy (RFC 8461)"


def _effective_tls(level: str | None, protocol: str | None) -> str:
    """Implicit TLS (smtps) is at least 'encrypt': Postfix skips wrappermode without it."""
    level = level if level in TLS_ORDER else "may"
    if protocol == "smtps" and TLS_ORDER[level] < TLS_ORDER["encrypt"]:
        return "encrypt"
    return level


def _nexthop_host(text: str) -> str | None:
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return names.lookup_domain(text)


_HANDLERS: dict[str, Callable[[Store, str, Options], Answer]] = {
    "relay_domains": relay_domains,
    "transport": transport,
    "relay_recipients": relay_recipients,
    "tls_policy": tls_policy,
}


def told(store: Store, domain_name: str, recipient: str | None = None, options: Options = DEFAULT_OPTIONS
         ) -> list[tuple[str, str, Answer]]:
    """What Postfix is told about a domain: (map, key, answer) for each map, in the order Postfix
    asks. ``recipient`` is a local part or full address to try against relay_recipients."""
    rcpt = recipient or "postmaster"
    if "@" not in rcpt:
        rcpt = f"{rcpt}@{domain_name}"
    result = [("relay_domains", domain_name, relay_domains(store, domain_name, options))]
    tr = transport(store, rcpt, options)
    result.append(("transport", rcpt, tr))
    result.append(("relay_recipients", rcpt.casefold(), relay_recipients(store, rcpt.casefold(), options)))
    if tr.status == OK:
        nexthop = tr.value.partition(":")[2]
        result.append(("tls_policy", nexthop, tls_policy(store, nexthop, options)))
    return result
