"""Policy decisions for Postfix's check_policy_service, at RCPT time.

For a recipient of one of our domains, in order:
  1. the domain is paused                   -> DEFER_IF_PERMIT (with the operator's reason);
  2. the domain's queue is over its quota    -> DEFER_IF_PERMIT (one dead primary cannot fill
                                                the disk);
  3. the domain's mode while the primary is up is ``defer`` (its own, or its relay's) and this
     node's health monitor sees the primary up -> DEFER_IF_PERMIT "This is a backup MX …"
     (mrod.answers.primaryup: postmaster@ and [policy] exempt_networks are accepted; a state
     down, unknown or stale accepts);
  4. recipient policy 'verify':
       known good (listed, postmaster, or a fresh positive callout) -> DUNNO (accept);
       known bad (a fresh negative callout), primary up    -> 550 5.1.1;
       otherwise, primary not known to be down             -> a callout to the primary
                                                              (returned as a Callout to run);
       primary down, or the callout inconclusive           -> the domain's choice:
                                                              accept (DUNNO) or defer.
Anything else -> DUNNO (the other restrictions decide).

Why this order: a pause is the operator's explicit word and wins over everything; the quota
protects this node's disk, so it holds for exempt clients too; the primary-up deferral comes
before verification so that no callout is made to a primary the sender is told to reach
anyway (and an exempt client, e.g. the primary itself, is still verified).

Reading the database is synchronous (microseconds); the callout itself is the caller's
(lookupd) job, off this module. lookupd decides most requests without the database at all
(mrod.answers.policymemory): this module is the path for paused, quota and verify domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import time
from typing import Mapping, Protocol

from mrod.infra.dbapi import SyncConnection
from mrod.infra import db, names
from mrod.answers import primaryup, routing
from mrod.infra.config import PolicyConfig
from mrod.answers.routestore import DomainRoute, RouteStore

DUNNO = "DUNNO"


@dataclass(frozen=True)
class Decision:
    action: str     # what Postfix is told (action=...)
    reason: str     # a short tag for logs and metrics: dunno, paused, quota, verified, ...


@dataclass(frozen=True)
class Callout:
    """Ask the primary whether it accepts ``address`` (RCPT TO), then call ``after_callout``."""

    address: str          # casefolded, extension stripped: what is cached
    recipient: str        # as the client gave it (Postfix names it in the reply itself)
    domain: str
    host: str
    port: int
    protocol: str
    tls: str
    verify_when_down: str


@dataclass(frozen=True)
class DomainPolicy:
    paused: bool
    pause_reason: str | None
    quota_messages: int | None
    quota_bytes: int | None
    verify_when_down: str
    when_primary_up: str = "accept"    # effective: the domain's own, or its relay's


class Primaries(Protocol):
    """This node's view of its primaries' health (lookupd: in memory, primaryhealth.py)."""

    interval: float     # [health] interval: older states are stale

    def health(self, relay_name: str) -> primaryup.Health | None: ...


class PolicyStore(RouteStore):
    """RouteStore plus the reads the policy needs."""

    def domain_policy(self, domain_id: int) -> DomainPolicy:
        row = self.conn.execute(
            "SELECT d.paused, d.pause_reason, d.quota_messages, d.quota_bytes, d.verify_when_down,"
            " d.when_primary_up, r.when_primary_up FROM domain d LEFT JOIN relay r ON r.id = d.relay_id"
            " WHERE d.id = ?",
            (domain_id,),
        ).fetchone()
        return DomainPolicy(bool(row[0]), row[1], row[2], row[3], row[4], primaryup.mode(row[5], row[6]))

    def queued(self, domain_id: int, node: str) -> tuple[int, int]:
        """What waits for the domain in this node's queue (each node has its own Postfix)."""
        row = self.conn.execute("SELECT messages, bytes FROM queue_stat WHERE node = ? AND domain_id = ?",
                                (node, domain_id)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def verified(self, address: str, now: str) -> bool | None:
        row = self.conn.execute(
            "SELECT valid FROM verify_cache WHERE address = ? AND expires_at > ?", (address, now)
        ).fetchone()
        return None if row is None else bool(row[0])

    def relay_state(self, relay_name: str | None, node: str) -> str:
        """The primary's state as this node's probes see it."""
        if relay_name is None:
            return "unknown"
        row = self.conn.execute(
            "SELECT h.state FROM relay_health h JOIN relay r ON r.id = h.relay_id WHERE h.node = ? AND r.name = ?",
            (node, relay_name)).fetchone()
        return row[0] if row else "unknown"

    def relay_health(self, relay_name: str, node: str) -> primaryup.Health | None:
        row = self.conn.execute(
            "SELECT h.state, h.last_probe_at FROM relay_health h JOIN relay r ON r.id = h.relay_id"
            " WHERE h.node = ? AND r.name = ?", (node, relay_name)).fetchone()
        if row is None:
            return None
        return row[0], db.parse_stamp(row[1]).timestamp() if row[1] else None


class StoredPrimaries:
    """Primaries read from the database per decision (``mrod domain show`` and tests; lookupd
    keeps them in memory)."""

    def __init__(self, store: PolicyStore, node: str, interval: float) -> None:
        self.store, self.node, self.interval = store, node, interval

    def health(self, relay_name: str) -> primaryup.Health | None:
        return self.store.relay_health(relay_name, self.node)


def evaluate(store: PolicyStore, request: Mapping[str, str], settings: PolicyConfig,
             options: routing.Options = routing.DEFAULT_OPTIONS, now: datetime | None = None,
             primaries: Primaries | None = None) -> Decision | Callout:
    if request.get("request") != "smtpd_access_policy" or request.get("protocol_state", "").upper() != "RCPT":
        return Decision(DUNNO, "not-rcpt")
    recipient = request.get("recipient", "")
    at = recipient.rfind("@")
    domain_name = names.lookup_domain(recipient[at + 1:]) if at >= 0 else None
    if domain_name is None:
        return Decision(DUNNO, "not-ours")
    found = routing.match(store, domain_name)
    if found is None or not found[0].enabled:
        return Decision(DUNNO, "not-ours")
    row = found[0]
    policy = store.domain_policy(row.id)
    if policy.paused:
        why = f": {policy.pause_reason}" if policy.pause_reason else ""
        return Decision(f"DEFER_IF_PERMIT Mail for {row.name} is paused on this backup MX{why}", "paused")
    size_text = request.get("size", "")
    over = _over_quota(store, row, policy, settings, int(size_text) if size_text.isdigit() else 0, options.node)
    if over:
        return Decision(f"DEFER_IF_PERMIT Queue for {row.name} is full ({over}); try again later", "quota")
    local = names.unquote_local(recipient[:at].casefold())
    said = primary_up(row, policy.when_primary_up, local, request, settings, options,
                      primaries or StoredPrimaries(store, options.node, 60.0))
    if said is not None and said.action != DUNNO:
        return said
    if row.recipients != "verify":
        return said or Decision(DUNNO, "dunno")
    return _verify(store, row, policy, recipient, domain_name, options, now or datetime.now(timezone.utc))


def primary_up(row: DomainRoute, effective: str, local: str, request: Mapping[str, str], settings: PolicyConfig,
               options: routing.Options, primaries: Primaries) -> Decision | None:
    """Step 3 (mrod.answers.primaryup), on either path (this module's or policymemory's): the
    deferral, the reason it accepts, or None (the mode is accept: the usual steps decide)."""
    verdict = primaryup.judge(effective, row.relay_name, routing.postmaster_accepted(local, options), request,
                              primaryup.networks(settings.exempt_networks), primaries.health, time.time(),
                              primaries.interval)
    if verdict.defer:
        return Decision(primaryup.deferral(row.name), "primary-up-defer")
    if verdict.reason == primaryup.POSTMASTER:
        return Decision(DUNNO, "postmaster")
    if verdict.reason == primaryup.EXEMPT_CLIENT:
        return Decision(DUNNO, "exempt-client")
    if verdict.reason == primaryup.DOWN:
        return Decision(DUNNO, "primary-down-accept")
    if verdict.reason == primaryup.UNKNOWN:
        return Decision(DUNNO, "health-unknown-accept")
    return None


def _over_quota(store: PolicyStore, row: DomainRoute, policy: DomainPolicy, settings: PolicyConfig,
                size: int, node: str) -> str | None:
    limit_messages = settings.default_quota_messages if policy.quota_messages is None else policy.quota_messages
    limit_bytes = settings.default_quota_bytes if policy.quota_bytes is None else policy.quota_bytes
    if not limit_messages and not limit_bytes:
        return None
    messages, size_queued = store.queued(row.id, node)
    if limit_messages and messages >= limit_messages:
        return f"{messages} messages waiting, limit {limit_messages}"
    # A message larger than the whole quota is still accepted into an empty queue, or it could
    # never pass this backup MX at all.
    if limit_bytes and (size_queued >= limit_bytes or (size_queued and size_queued + size > limit_bytes)):
        return f"{size_queued} bytes waiting, limit {limit_bytes}"
    return None


def _verify(store: PolicyStore, row: DomainRoute, policy: DomainPolicy, recipient: str, domain_name: str,
            options: routing.Options, now: datetime) -> Decision | Callout:
    local = names.unquote_local(recipient[:recipient.rfind("@")].casefold())
    candidates = routing.recipient_candidates(local, domain_name, options.recipient_delimiter)
    address = candidates[-2]       # without the +extension: what the primary is asked and the cache keeps
    if store.listed_recipient(row.id, candidates):
        return Decision(DUNNO, "listed")
    if routing.postmaster_accepted(local, options):
        return Decision(DUNNO, "postmaster")      # never asked of the primary (RFC 5321 §4.5.1)
    known = store.verified(address, db.stamp(now))
    if known:
        return Decision(DUNNO, "verified")
    state = store.relay_state(row.relay_name, options.node)
    if known is False and state != "down":
        return _rejected()
    if state == "down" or row.host is None:
        # Down, or routed by MX (no single primary to ask): the domain's choice.
        return when_primary_unreachable(row.name, policy.verify_when_down)
    return Callout(address, recipient, row.name, row.host, row.port or 25, row.protocol or "smtp", row.tls or "may",
                   policy.verify_when_down)


# Action texts carry mrod's own words only: smtpd puts "<rcpt>: Recipient address rejected: "
# in front of every policy answer's text itself (tests/ops/test_policy_replies.py).
REJECTED_TEXT = "User unknown at the primary mail server"


def _rejected() -> Decision:
    return Decision(f"550 5.1.1 {REJECTED_TEXT}", "rejected")


def when_primary_unreachable(domain: str, choice: str) -> Decision:
    if choice == "defer":
        return Decision(f"DEFER_IF_PERMIT Cannot verify this recipient while the primary mail server of {domain}"
                        " is unreachable; try again later", "unverified-defer")
    return Decision(DUNNO, "unverified-accept")


def when_database_unreachable(choice: str) -> Decision:
    """The shared database is unreachable (a backup MX must still answer): ``[policy] when_database_unreachable``."""
    if choice == "defer":
        return Decision("DEFER_IF_PERMIT The backup MX cannot reach its database; try again later",
                        "database-unreachable-defer")
    return Decision(DUNNO, "database-unreachable")


def after_callout(callout: Callout, result: bool | None) -> Decision:
    """result: True accepted by the primary, False refused (5xx), None inconclusive."""
    if result is True:
        return Decision(DUNNO, "verified")
    if result is False:
        return _rejected()
    return when_primary_unreachable(callout.domain, callout.verify_when_down)


def cache_entry(callout: Callout, result: bool, settings: PolicyConfig, now: datetime | None = None
                ) -> tuple[str, int, str, str]:
    """(address, valid, checked_at, expires_at) for the verify_cache table."""
    now = now or datetime.now(timezone.utc)
    ttl = settings.positive_ttl if result else settings.negative_ttl
    return callout.address, int(result), db.stamp(now), db.stamp(now + timedelta(seconds=ttl))


def record_callout(conn: SyncConnection, entry: tuple[str, int, str, str]) -> None:
    """Store a callout result (sync: lookupd runs it in a worker thread)."""
    conn.execute(
        "INSERT INTO verify_cache (address, valid, checked_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (address) DO UPDATE SET valid = excluded.valid, checked_at = excluded.checked_at,"
        " expires_at = excluded.expires_at",
        entry,
    )
