"""Policy decisions for Postfix's check_policy_service, at RCPT time.

For a recipient of one of our domains, in order:
  1. the domain is paused                   -> DEFER_IF_PERMIT (with the operator's reason);
  2. the domain's queue is over its quota    -> DEFER_IF_PERMIT (one dead primary cannot fill
                                                the disk);
  3. recipient policy 'verify':
       known good (listed, postmaster, or a fresh positive callout) -> DUNNO (accept);
       known bad (a fresh negative callout), primary up    -> 550 5.1.1;
       otherwise, primary not known to be down             -> a callout to the primary
                                                              (returned as a Callout to run);
       primary down, or the callout inconclusive           -> the domain's choice:
                                                              accept (DUNNO) or defer.
Anything else -> DUNNO (the other restrictions decide). Reading the database is synchronous
(microseconds); the callout itself is the caller's (lookupd) job, off this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

from mrod.infra.dbapi import SyncConnection
from mrod.infra import db, names
from mrod.answers import routing
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


class PolicyStore(RouteStore):
    """RouteStore plus the reads the policy needs."""

    def domain_policy(self, domain_id: int) -> DomainPolicy:
        row = self.conn.execute(
            "SELECT paused, pause_reason, quota_messages, quota_bytes, verify_when_down FROM domain WHERE id = ?",
            (domain_id,),
        ).fetchone()
        return DomainPolicy(bool(row[0]), row[1], row[2], row[3], row[4])

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


def evaluate(store: PolicyStore, request: Mapping[str, str], settings: PolicyConfig,
             options: routing.Options = routing.DEFAULT_OPTIONS, now: datetime | None = None,
             ) -> Decision | Callout:
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
    if row.recipients != "verify":
        return Decision(DUNNO, "dunno")
    return _verify(store, row, policy, recipient, domain_name, options, now or datetime.now(timezone.utc))


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
