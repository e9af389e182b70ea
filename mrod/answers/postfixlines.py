"""The Postfix side of mrod: main.cf and master.cf lines for the configured endpoints.

``mrod postfix-config`` prints these; postfix-snippets/ holds them for the default config
(a test keeps the two equal).
"""

from __future__ import annotations

from mrod.infra import endpoints
from mrod.infra.config import Config

# Postfix daemons work in their queue directory (and chroot there on Debian), so a socket
# inside it is named relative to it: `private/mrod` works chrooted or not.
POSTFIX_QUEUE_DIRECTORY = "/var/spool/postfix/"

# main.cf parameter -> mrod map.
MAP_PARAMETERS = (
    ("relay_domains", "relay_domains"),
    ("transport_maps", "transport"),
    ("relay_recipient_maps", "relay_recipients"),
    ("smtp_tls_policy_maps", "tls_policy"),
)


DNSSEC_PARAMETER = "smtp_dns_support_level"


def table_reference(config: Config, map_name: str) -> str | None:
    """How Postfix should name one of mrod's maps: the socketmap if configured, else its tcp table."""
    lk = config.lookupd
    if lk.socketmap:
        ep = endpoints.parse(lk.socketmap)
        if ep.path is not None and ep.path.startswith(POSTFIX_QUEUE_DIRECTORY):
            return f"socketmap:unix:{ep.path[len(POSTFIX_QUEUE_DIRECTORY):]}:{map_name}"
        return f"socketmap:{ep.postfix()}:{map_name}"
    if map_name in lk.tcp_table:
        ep = endpoints.parse(lk.tcp_table[map_name])
        if ep.is_unix:
            return None  # Postfix's tcp: table speaks TCP only
        return f"tcp:{ep.host_for_url()}:{ep.port}"
    return None


def policy_reference(config: Config) -> str | None:
    """How smtpd names mrod's policy service (check_policy_service), or None when it is off."""
    if not config.lookupd.policy:
        return None
    ep = endpoints.parse(config.lookupd.policy)
    if ep.path is not None and ep.path.startswith(POSTFIX_QUEUE_DIRECTORY):
        return f"unix:{ep.path[len(POSTFIX_QUEUE_DIRECTORY):]}"
    return ep.postfix()


def main_cf(config: Config) -> str:
    lines = [
        "# mrod: Postfix main.cf settings for a backup MX (from `mrod postfix-config`).",
        "# Every lookup is answered live from mrod's database: no postmap, no reload.",
    ]
    sm = config.lookupd.socketmap
    if sm.startswith("unix:") and not sm[5:].startswith(POSTFIX_QUEUE_DIRECTORY):
        lines.append(f"# WARNING: {sm[5:]} is outside {POSTFIX_QUEUE_DIRECTORY}: chrooted Postfix daemons"
                     " cannot reach it; use an inet endpoint or a socket under the queue directory.")
    for parameter, map_name in MAP_PARAMETERS:
        ref = table_reference(config, map_name)
        if ref is None:
            lines.append(f"# {parameter}: no mrod endpoint serves {map_name} in this configuration")
        else:
            lines.append(f"{parameter} = {ref}")
    lines += [
        "# Relay only for mrod's domains; refuse unknown recipients of `listed` domains at RCPT",
        "# time (no backscatter).",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtpd_reject_unlisted_recipient = yes",
    ]
    policy = policy_reference(config)
    if policy is not None:
        lines += [
            "# Per-domain pause, queue quota and recipient verification (mrod's policy service),",
            "# after smtpd_relay_restrictions have refused relaying. If mrod cannot answer, Postfix",
            "# applies its default action, 451 4.3.5: the sender retries later. DUNNO instead would",
            "# accept mail that bypasses pauses, quotas and verification (docs/operations.md).",
            f"smtpd_recipient_restrictions = check_policy_service {policy}",
        ]
    lines += [
        "# mrod flushes a domain's queued mail when its primary comes back (postqueue -s), which",
        "# needs the flush service for mrod's domains (Postfix's default, stated here).",
        "fast_flush_domains = $relay_domains",
        f"recipient_delimiter = {config.lookupd.recipient_delimiter}",
        "# A primary may be down for days: keep its mail (Postfix's defaults are 5d).",
        "maximal_queue_lifetime = 5d",
        "bounce_queue_lifetime = 5d",
    ]
    if config.mta_sts.enabled and config.mta_sts.dane:
        lines += [
            "# DANE (docs/tls.md): mrod answers `dane` for destinations whose MX hosts publish TLSA",
            "# records under DNSSEC; Postfix checks them itself, with DNSSEC-validated lookups. That",
            "# needs a validating resolver on this host (unbound, or BIND with dnssec-validation) in",
            "# /etc/resolv.conf (and the chroot's copy). smtp_tls_security_level stays as it is.",
            f"{DNSSEC_PARAMETER} = dnssec",
        ]
    return "\n".join(lines + pace_lines(config)) + "\n"


PACE = ("_destination_concurrency_limit", "_destination_rate_delay")


def pace_lines(config: Config) -> list[str]:
    """[flush] concurrency / rate_delay as settings of mrod's relay transport: the pace a
    returning primary gets its backlog at (Postfix's defaults when they are 0)."""
    flush, lines = config.flush, []
    if flush.concurrency or flush.rate_delay:
        lines.append("# The pace a returning primary gets its backlog at ([flush] in mrod's config).")
    if flush.concurrency:
        lines.append(f"{flush.transport}{PACE[0]} = {flush.concurrency}")
    if flush.rate_delay:
        lines.append(f"{flush.transport}{PACE[1]} = {flush.rate_delay}s")
    return lines


def master_cf(config: Config) -> str:
    service = config.lookupd.smtps_transport
    return (
        "# mrod: master.cf service for primaries that take implicit TLS (SMTPS, port 465).\n"
        f"{service} unix - - n - - smtp\n"
        "  -o smtp_tls_security_level=encrypt\n"
        "  -o smtp_tls_wrappermode=yes\n"
    )
