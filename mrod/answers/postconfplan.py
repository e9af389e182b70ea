"""Merging mrod's main.cf settings into an existing Postfix configuration (no I/O).

``mrod postfix-config --postconf`` reads what main.cf sets (``postconf -n``) and what is in
effect (``postconf``), and plans ``postconf -e`` changes that keep the operator's own lists —
RBL, SPF policy, access maps — and add mrod's pieces where they belong, never a second copy:

- the four map parameters: set when main.cf leaves them at Postfix's default; otherwise mrod's
  table is appended after the operator's own (theirs decide first) and an older mrod table
  for the same map (``socketmap:…:relay_domains``) is replaced;
- ``smtpd_relay_restrictions``: kept when it already refuses unauthorised relaying
  (reject_ or defer_unauth_destination), else reject_unauth_destination is appended;
- ``smtpd_recipient_restrictions``: mrod's ``check_policy_service`` goes after every check the
  operator has (RBLs and SPF reject cheaply first), before a final ``permit``;
- the other settings only when the current value would not do (a shorter queue lifetime,
  smtpd_reject_unlisted_recipient off, a flush list without $relay_domains).

A Debian "No configuration" install has no main.cf: ``minimum()`` adds what a backup MX needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from mrod.answers.postfixlines import DNSSEC_PARAMETER, MAP_PARAMETERS, PACE
from mrod.infra import durations

LIFETIMES = ("maximal_queue_lifetime", "bounce_queue_lifetime")
UNAUTH = ("reject_unauth_destination", "defer_unauth_destination")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Change:
    parameter: str
    old: str | None          # None: main.cf does not set it
    new: str
    why: str


def parse_main_cf(text: str) -> dict[str, str]:
    """``name = value`` lines (continuation lines start with white space; # comments)."""
    values: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and name is not None:
            values[name] += " " + line.strip()
            continue
        key, sep, value = line.partition("=")
        if sep:
            name = key.strip()
            values[name] = value.strip()
    return values


def split_list(value: str) -> list[str]:
    """A Postfix list: items separated by commas or white space; ``{ … }`` keeps one item."""
    items, current, depth = [], "", 0
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if depth == 0 and (ch == "," or ch.isspace()):
            if current:
                items.append(current)
            current = ""
        else:
            current += ch
    if current:
        items.append(current)
    return items


def _join(items: list[str]) -> str:
    return ", ".join(items)


def seconds(value: str) -> int | None:
    found = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", value)
    if not found:
        return None
    return int(found.group(1)) * _UNITS[found.group(2) or "d"]   # Postfix's default unit: days


def _is_mrod_table(item: str, map_name: str) -> bool:
    return (item.startswith("socketmap:") and item.endswith(":" + map_name)) or item.startswith("mrod:")


def plan(wanted: Mapping[str, str], explicit: Mapping[str, str], effective: Mapping[str, str]) -> list[Change]:
    """Changes that bring a Postfix configuration to mrod's ``wanted`` (its postfix-config).

    ``explicit``: what main.cf sets (postconf -n); ``effective``: values in force (postconf).
    """
    changes: list[Change] = []

    def change(parameter: str, new: str, why: str) -> None:
        if explicit.get(parameter) != new:
            changes.append(Change(parameter, explicit.get(parameter), new, why))

    for parameter, map_name in MAP_PARAMETERS:
        ref = wanted.get(parameter)
        if ref is None:
            continue
        if parameter not in explicit:
            change(parameter, ref, f"mrod answers {map_name}")
            continue
        items = split_list(explicit[parameter])
        if ref in items:
            continue
        kept = [i for i in items if not _is_mrod_table(i, map_name)]
        change(parameter, _join(kept + [ref]), f"mrod's {map_name} after your own tables")

    if "smtpd_relay_restrictions" in wanted:
        if "smtpd_relay_restrictions" not in explicit:
            change("smtpd_relay_restrictions", wanted["smtpd_relay_restrictions"], "relay only for mrod's domains")
        else:
            items = split_list(explicit["smtpd_relay_restrictions"])
            if not any(i in UNAUTH for i in items):
                change("smtpd_relay_restrictions", _join(items + ["reject_unauth_destination"]),
                       "refuse relaying for anyone else")

    policy = wanted.get("smtpd_recipient_restrictions")
    if policy:
        items = split_list(explicit.get("smtpd_recipient_restrictions", ""))
        check = split_list(policy)     # ["check_policy_service", "inet:127.0.0.1:10102"]
        pairs = list(zip(items, items[1:], strict=False))
        if (check[0], check[1]) not in pairs:
            at = len(items) - 1 if items and items[-1] == "permit" else len(items)
            change("smtpd_recipient_restrictions", _join(items[:at] + [" ".join(check)] + items[at:]),
                   "mrod's policy service after your checks")

    if "smtpd_reject_unlisted_recipient" in wanted and effective.get("smtpd_reject_unlisted_recipient", "yes") != "yes":
        change("smtpd_reject_unlisted_recipient", "yes", "refuse unknown recipients at RCPT time")
    if "fast_flush_domains" in wanted:
        flush = effective.get("fast_flush_domains", "$relay_domains")
        if "$relay_domains" not in flush and "${relay_domains}" not in flush:
            change("fast_flush_domains", _join(split_list(flush) + ["$relay_domains"]),
                   "mrod flushes its domains when their primary is back")
    delimiter = wanted.get("recipient_delimiter")
    if delimiter and not effective.get("recipient_delimiter"):
        change("recipient_delimiter", delimiter, "as [lookupd] recipient_delimiter")
    for parameter, value in wanted.items():
        if parameter.endswith(PACE):
            change(parameter, value, "[flush]: the pace a returning primary gets its backlog at")
    if wanted.get(DNSSEC_PARAMETER) and effective.get(DNSSEC_PARAMETER) != wanted[DNSSEC_PARAMETER]:
        change(DNSSEC_PARAMETER, wanted[DNSSEC_PARAMETER], "DANE: DNSSEC-validated lookups (a validating resolver"
               " must be in /etc/resolv.conf)")
    for parameter in LIFETIMES:
        want = wanted.get(parameter)
        have = seconds(effective.get(parameter, "5d"))
        if want and (have is None or have < (seconds(want) or 0)):
            change(parameter, want, "a primary may be down for days")
    return changes


def with_retention(wanted: Mapping[str, str], longest: tuple[str, int] | None) -> dict[str, str]:
    """mrod's settings with ``maximal_queue_lifetime`` raised to the longest per-domain queue
    lifetime (``longest``: (domain, seconds)): Postfix bounces at its own lifetime whatever a
    domain's says, so the global one must be at least the longest any domain needs."""
    out = dict(wanted)
    if longest is not None and longest[1] > (seconds(out.get(LIFETIMES[0], "5d")) or 0):
        out[LIFETIMES[0]] = durations.duration_text(longest[1])
    return out


def retention_warnings(effective: Mapping[str, str], longest: tuple[str, int] | None) -> list[str]:
    """Said when Postfix's lifetime in force is shorter than a domain's own."""
    have = seconds(effective.get(LIFETIMES[0], "5d"))
    if longest is None or have is None or have >= longest[1]:
        return []
    return [f"domain {longest[0]} keeps mail for {durations.duration_text(longest[1])} (queue_lifetime) but Postfix's "
            f"maximal_queue_lifetime is {effective.get(LIFETIMES[0], '5d')}: Postfix would bounce it first;"
            " apply the change below"]


def warnings(wanted: Mapping[str, str], effective: Mapping[str, str]) -> list[str]:
    """What a merge cannot settle alone (said, not changed)."""
    found = []
    delimiter, have = wanted.get("recipient_delimiter"), effective.get("recipient_delimiter")
    if delimiter and have and have != delimiter:
        found.append(f"recipient_delimiter is {have!r} but mrod's [lookupd] recipient_delimiter is "
                     f"{delimiter!r}: make them equal")
    if wanted.get(DNSSEC_PARAMETER) and effective.get(DNSSEC_PARAMETER) != wanted[DNSSEC_PARAMETER]:
        # Said when it is being set: after that the operator has read it.
        found.append(f"{DNSSEC_PARAMETER} = dnssec makes Postfix trust the AD bit of the resolver in "
                     "/etc/resolv.conf: it must be a validating resolver on this host (unbound, or named with "
                     "dnssec-validation auto), with `options trust-ad` (glibc clears the AD bit without it); "
                     "`mrod mta-sts refresh` says whether mrod's resolver validates (docs/tls.md)")
    return found


def minimum(hostname: str) -> list[Change]:
    """What a Postfix with no main.cf (Debian's "No configuration") needs to be a backup MX.
    mydestination must not name the relayed domains: mail for them is relayed, not delivered here."""
    return [
        Change("compatibility_level", None, "3.6", "Debian's default for new installs"),
        Change("myhostname", None, hostname, "this host's name, as the MX records name it"),
        Change("mydestination", None, "$myhostname, localhost.$mydomain, localhost",
               "mail delivered on this host: never the relayed domains"),
        Change("inet_interfaces", None, "all", "receive mail from the Internet"),
        Change("mynetworks", None, "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128", "only this host may relay"),
    ]


def diff(changes: list[Change]) -> str:
    lines = []
    for c in changes:
        lines.append(f"# {c.parameter}: {c.why}")
        if c.old is not None:
            lines.append(f"- {c.parameter} = {c.old}")
        lines.append(f"+ {c.parameter} = {c.new}")
    return "\n".join(lines) + ("\n" if lines else "")
