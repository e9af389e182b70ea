"""Accept only when needed (issue 20.1): what a backup MX answers at RCPT while the domain's
primary is up.

A domain says ``accept`` (take the mail: the old behaviour), ``defer``, or ``inherit`` (its
relay's choice; a relay says ``accept``, the default, or ``defer``). With ``defer``, while this
node's own health monitor sees the primary ``up``, RCPT gets a 4xx telling the sender's MTA to
deliver to the primary: a real sender retries and reaches it; spam aimed at the backup MX on
purpose (it lacks the primary's filters) gets nothing.

It never refuses mail because mrod does not know: a state that is ``down``, ``unknown``, or
stale (its last probe older than ``STALE_PROBES`` health intervals: the monitor stopped), a
domain without a probed relay (a host override, or routed by MX), and a database that cannot be
read all mean accept. So do ``postmaster@`` (RFC 5321 §4.5.1; [lookupd] accept_postmaster) and
clients in ``[policy] exempt_networks`` (the primary itself, partners).

Pure: the caller gives the health state (lookupd keeps this node's in memory).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping

from mrod.infra.enums import HealthState, WhenPrimaryUp

STALE_PROBES = 3    # a state whose last probe is older than this many [health] intervals is stale

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What the health monitor of this node says of a relay (by name): its state and the epoch
# seconds of its last probe (None: never probed).
Health = tuple[str, float | None]
HealthOf = Callable[[str], Health | None]

# Decision reasons (metrics: mrod_policy_decisions_total{reason=...}).
DEFERRED = "primary-up-defer"
EXEMPT_CLIENT = "exempt-client"
POSTMASTER = "postmaster"
UNKNOWN = "health-unknown-accept"
DOWN = "primary-down-accept"

# smtpd prefixes "<rcpt>: Recipient address rejected: " itself (tests/ops/test_policy_replies.py).
TEXT = "This is a backup MX for {domain}; deliver to its primary mail server"


@dataclass(frozen=True)
class Verdict:
    defer: bool
    reason: str | None     # None: the mode is accept (nothing to say; the usual reasons follow)


def mode(domain_mode: str, relay_mode: str | None) -> str:
    """The effective mode: a domain's own, or its relay's (accept without a relay)."""
    if domain_mode != WhenPrimaryUp.INHERIT:
        return domain_mode
    return relay_mode or WhenPrimaryUp.ACCEPT


def state(health: Health | None, now: float, interval: float) -> str:
    """up / down / unknown; a state not probed for STALE_PROBES intervals is unknown."""
    if health is None:
        return HealthState.UNKNOWN
    current, probed_at = health
    if probed_at is None or now - probed_at > STALE_PROBES * interval:
        return HealthState.UNKNOWN
    return current


@lru_cache(maxsize=8)
def networks(texts: tuple[str, ...]) -> tuple[Network, ...]:
    """[policy] exempt_networks, parsed once (validated at config load)."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def exempt(client_address: str, nets: tuple[Network, ...]) -> bool:
    if not nets or not client_address:
        return False
    try:
        address = ipaddress.ip_address(client_address.removeprefix("IPv6:"))
    except ValueError:
        return False     # "unknown" (Postfix's word for no address) or garbage: not exempt
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


def judge(effective: str, relay_name: str | None, postmaster: bool, request: Mapping[str, str],
          nets: tuple[Network, ...], health_of: HealthOf, now: float, interval: float) -> Verdict:
    """Whether to defer this recipient because its primary is up."""
    if effective != WhenPrimaryUp.DEFER:
        return Verdict(False, None)
    if postmaster:
        return Verdict(False, POSTMASTER)
    if exempt(request.get("client_address", ""), nets):
        return Verdict(False, EXEMPT_CLIENT)
    if relay_name is None:           # a host override or routed by MX: nothing probes it
        return Verdict(False, UNKNOWN)
    seen = state(health_of(relay_name), now, interval)
    if seen == HealthState.UP:
        return Verdict(True, DEFERRED)
    return Verdict(False, DOWN if seen == HealthState.DOWN else UNKNOWN)


def deferral(domain: str) -> str:
    """The action. DEFER_IF_PERMIT rather than DEFER or an explicit "450 …": smtpd turns it into
    the same "450 4.7.1" (as for pause and quota), but only if the rest of the restrictions
    would permit — a recipient or client that a later restriction rejects (not listed, a
    blocklist) still gets its 5xx, so a deferral never turns a refusal into retries."""
    return f"DEFER_IF_PERMIT {TEXT.format(domain=domain)}"
