"""Policy decisions from memory (issue 23.3): the common request read no database.

lookupd already holds the routing snapshot, with each domain's policy fields beside it
(snapshotpolicy.py), and this node's primary health states (lookupd/primaryhealth.py). A
recipient of a domain that is not paused, has no queue quota (its own or the [policy]
default) and is not ``verify`` is decided here, with the same steps and answers as
mrod.answers.policy's (which it shares: routing.match, policy.primary_up). Anything else —
and a snapshot without policy fields — returns None: the caller asks mrod.answers.policy,
which reads the database, so paused, quota and verify domains behave exactly as before.
"""

from __future__ import annotations

from typing import Mapping

from mrod.answers import policy, primaryup, routing
from mrod.answers.snapshot import RouteSnapshot
from mrod.infra import names
from mrod.infra.config import PolicyConfig
from mrod.infra.enums import RecipientPolicy


def decide(snap: RouteSnapshot, request: Mapping[str, str], settings: PolicyConfig, options: routing.Options,
           primaries: policy.Primaries) -> policy.Decision | None:
    """The decision, or None: it needs the database."""
    index = snap.policy
    if index is None:
        return None
    if request.get("request") != "smtpd_access_policy" or request.get("protocol_state", "").upper() != "RCPT":
        return policy.Decision(policy.DUNNO, "not-rcpt")
    recipient = request.get("recipient", "")
    at = recipient.rfind("@")
    domain_name = names.lookup_domain(recipient[at + 1:]) if at >= 0 else None
    if domain_name is None:
        return policy.Decision(policy.DUNNO, "not-ours")
    found = routing.match(snap, domain_name)
    if found is None or not found[0].enabled:
        return policy.Decision(policy.DUNNO, "not-ours")
    row = found[0]
    flags = index.flags(row.id)
    if flags.paused or row.recipients == RecipientPolicy.VERIFY or _has_quota(flags, settings):
        return None
    relay_mode = index.relays.get(row.relay_name) if row.relay_name is not None else None
    effective = primaryup.mode(flags.when_primary_up, relay_mode)
    local = names.unquote_local(recipient[:at].casefold())
    return policy.primary_up(row, effective, local, request, settings, options, primaries) or \
        policy.Decision(policy.DUNNO, "dunno")


def _has_quota(flags: tuple[bool, int | None, int | None, str], settings: PolicyConfig) -> bool:
    """As policy._over_quota reads the limits: a domain's own (0: none), else the default."""
    messages = settings.default_quota_messages if flags[1] is None else flags[1]
    size = settings.default_quota_bytes if flags[2] is None else flags[2]
    return bool(messages or size)
