"""The trust kit: what the primary's filters need to know about the backup MX nodes (issue 20.4).

Mail a backup MX accepted reaches the primary from the backup's address, so the primary's SPF,
DNSBL and rate checks judge the backup instead of the real sender. ``mrod trust-kit --format F``
(also the panel's Trust kit page and GET /api/trust-kit) prints, for every node of the cluster,
a snippet for one of the primary's filters, built from each node's ``[node] public_addresses``
(reported with its status row: mrod.operations.nodereports). A node that has none set is named
in a comment, never guessed; for the node printing the kit a hint may be added (the address it
connects out from).

The renderers are pure (nodes in, text out); each output begins with a comment saying what it
is and where it goes. tests/ops/test_trustkit_tools.py checks each one with the tool itself
(rspamadm configtest, spamassassin --lint, postfix check / postmap, an SPF parse and named).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable

from mrod.infra.config import Config
from mrod.infra.dbapi import Connection
from mrod.infra.enums import TRUST_KIT_FORMATS, TrustKitFormat
from mrod.infra.errors import InvalidInput
from mrod.operations import nodereports

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class NodeAddresses:
    node: str
    addresses: tuple[str, ...]      # [node] public_addresses as configured (normalised); () = not set
    hint: str = ""                  # for a node without addresses: what it seems to send from

    @property
    def networks(self) -> list[Network]:
        return [ipaddress.ip_network(a) for a in self.addresses]


def gather(stored: dict[str, tuple[str, ...]], here: str, mine: tuple[str, ...], hint: str = ""
           ) -> list[NodeAddresses]:
    """Every node's addresses, by name: the reported ones (``stored``) and this node's from its
    own config (``mine``: right even before its first report, and on SQLite where none is made)."""
    found = {node: NodeAddresses(node, addresses) for node, addresses in stored.items()}
    found[here] = NodeAddresses(here, mine, "" if mine else hint)
    return [found[n] for n in sorted(found)]


async def for_cluster(conn: Connection, cfg: Config) -> list[NodeAddresses]:
    """Every node's addresses: those reported to the shared database, and this node's own."""
    stored = await nodereports.public_addresses(conn)
    mine = cfg.node.public_addresses
    return gather(stored, cfg.node.name, mine, "" if mine else outgoing_hint())


def outgoing_hint() -> str:
    """The address this machine connects out from (a route lookup: a UDP socket is 'connected'
    to a documentation address, no packet is sent). '' when there is no route."""
    found = []
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 25))
                address = ipaddress.ip_address(probe.getsockname()[0])
        except OSError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            found.append(str(address))
    return f"it connects out from {' and '.join(found)}" if found else ""


def check_format(value: str) -> TrustKitFormat:
    if value not in TRUST_KIT_FORMATS:
        raise InvalidInput("format", f"unknown trust kit format {value!r} (one of: {', '.join(TRUST_KIT_FORMATS)})")
    return TrustKitFormat(value)


def render(fmt: str, nodes: list[NodeAddresses]) -> str:
    """The kit in format ``fmt`` (InvalidInput for an unknown one)."""
    return RENDERERS[check_format(fmt)](nodes)


# -- pieces shared by the formats ------------------------------------------------------------------


def _cidr(net: Network) -> str:
    return f"{net.network_address}/{net.prefixlen}"


def _node_comments(nodes: list[NodeAddresses]) -> list[str]:
    """One comment per node: what it contributes, or that it has no public_addresses set."""
    lines = []
    for n in nodes:
        if n.addresses:
            lines.append(f"# node {n.node}: {' '.join(n.addresses)}")
        else:
            hint = f" (hint: {n.hint})" if n.hint else ""
            lines.append(f"# node {n.node}: NO [node] public_addresses set, so it is missing below{hint}; "
                         "set them in its mrod.toml and print the kit again")
    return lines


def _all(nodes: list[NodeAddresses]) -> list[tuple[str, Network]]:
    """(node, network) for every address of every node, without repeats."""
    seen: set[Network] = set()
    found = []
    for n in nodes:
        for net in n.networks:
            if net not in seen:
                seen.add(net)
                found.append((n.node, net))
    return found


def _header(what: str, where: list[str], nodes: list[NodeAddresses]) -> list[str]:
    return [f"# mrod trust kit ({what}): the backup MX nodes of this mrod cluster relay to the primary",
            "# mail they accepted for its domains; the primary's filters must judge the sender that",
            "# connected to the backup, not the backup itself.", *where, *_node_comments(nodes)]


# -- the formats -----------------------------------------------------------------------------------


def rspamd(nodes: list[NodeAddresses]) -> str:
    entries = [f'    "{_cidr(net)}",   # node {node}' for node, net in _all(nodes)]
    lines = _header("rspamd 3.x", [
        "# Two files for the primary's rspamd, each after its '# ==> FILE' line; then `rspamadm configtest`",
        "# and `systemctl reload rspamd`. local_addrs (added to rspamd's defaults) makes the nodes local;",
        "# the external_relay rule (strategy local) then takes the sending IP, host name and HELO from the",
        "# Received header the backup wrote, so SPF, RBL and reputation checks judge the real sender.",
    ], nodes)
    lines += ["# ==> /etc/rspamd/local.d/options.inc", "local_addrs = [", *entries, "];",
              "# ==> /etc/rspamd/local.d/external_relay.conf", "enabled = true;", "rules {",
              "  MROD_BACKUP_MX {", '    strategy = "local";', "  }", "}"]
    return "\n".join(lines) + "\n"


def rspamd_files(text: str) -> dict[str, str]:
    """The rspamd kit cut into its files (path -> content), at its '# ==> FILE' lines."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# ==> "):
            current = files.setdefault(line[6:].strip(), [])
        elif current is not None:
            current.append(line)
    return {path: "\n".join(body) + "\n" for path, body in files.items()}


def spamassassin(nodes: list[NodeAddresses]) -> str:
    nets = " ".join(_cidr(net) for _node, net in _all(nodes))
    lines = _header("SpamAssassin", [
        "# Save as /etc/spamassassin/mrod-backup-mx.cf on the primary (every .cf in the site config",
        "# directory is read), then `spamassassin --lint` and restart spamd / amavis. These lines add to",
        "# any trusted_networks / internal_networks you have; if you set none so far, list the primary's",
        "# own public addresses on both lines too. Both: the backup is one of your MX hosts, so its",
        "# Received header is trusted and the hop before it is the one DNSBL and SPF checks judge.",
    ], nodes)
    if nets:
        lines += [f"trusted_networks {nets}", f"internal_networks {nets}"]
    return "\n".join(lines) + "\n"


def postscreen(nodes: list[NodeAddresses]) -> str:
    lines = _header("postscreen", [
        "# Save as /etc/postfix/mrod-backup-mx-postscreen.cidr on the primary and name it in main.cf:",
        "#   postscreen_access_list = permit_mynetworks, cidr:/etc/postfix/mrod-backup-mx-postscreen.cidr",
        "# then `postfix reload` (a cidr table is read as text: no postmap). 'permit' lets the backup",
        "# past postscreen's DNSBL and pregreet tests (postscreen_access_list, postscreen(8)).",
    ], nodes)
    lines += [f"{_cidr(net)} permit" for _node, net in _all(nodes)]
    return "\n".join(lines) + "\n"


def postfix(nodes: list[NodeAddresses]) -> str:
    wide = " ".join(_cidr(net) if net.version == 4 else f"[{net.network_address}]/{net.prefixlen}"
                    for _node, net in _all(nodes))
    lines = _header("Postfix smtpd", [
        "# Save as /etc/postfix/mrod-backup-mx.cidr on the primary and put it in smtpd_recipient_restrictions",
        "# after reject_unauth_destination and before reject_rbl_client, check_policy_service (SPF",
        "# policy) and rate limits, then `postfix reload`:",
        "#   smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination,",
        "#       check_client_access cidr:/etc/postfix/mrod-backup-mx.cidr, reject_rbl_client ...",
        "# permit_auth_destination lets the backup through only with mail for the primary's own domains;",
        "# it cannot relay elsewhere. mynetworks instead would trust it for relaying too; if you want",
        f"# that, add to mynetworks: {wide or '(no addresses known)'}",
    ], nodes)
    lines += [f"{_cidr(net)} permit_auth_destination" for _node, net in _all(nodes)]
    return "\n".join(lines) + "\n"


def spf_mechanisms(nodes: list[NodeAddresses]) -> list[str]:
    found = []
    for _node, net in _all(nodes):
        kind = "ip4" if net.version == 4 else "ip6"
        whole = net.prefixlen == net.max_prefixlen
        found.append(f"{kind}:{net.network_address}" if whole else f"{kind}:{_cidr(net)}")
    return found


def spf(nodes: list[NodeAddresses]) -> str:
    mechanisms = spf_mechanisms(nodes)
    record = " ".join(["v=spf1", "mx", *mechanisms, "~all"])
    # A TXT character-string holds at most 255 bytes (RFC 1035); SPF joins the strings again.
    strings = " ".join(f'"{record[i:i + 255]}"' for i in range(0, len(record), 255))
    lines = _header("SPF", [
        "# Mail from a backup MX carries other senders' addresses, so SPF of *your* domains matters only",
        "# for what the nodes send in their own name (DSNs, HELO checks, RFC 7208 section 2.3): add the",
        "# mechanisms on the next line to the SPF record of each node's HELO name and of the domains whose",
        "# mail the nodes may send; the last line is a full example record (zone-file syntax) to adapt.",
        "# On the primary, SPF of relayed mail is the rspamd/SpamAssassin/Postfix kits' business.",
    ], nodes)
    lines += [" ".join(mechanisms) if mechanisms else "# (no addresses known: no mechanisms)",
              f"@ IN TXT {strings}"]
    return "\n".join(lines) + "\n"


RENDERERS: dict[TrustKitFormat, Callable[[list[NodeAddresses]], str]] = {
    TrustKitFormat.RSPAMD: rspamd,
    TrustKitFormat.SPAMASSASSIN: spamassassin,
    TrustKitFormat.POSTSCREEN: postscreen,
    TrustKitFormat.POSTFIX: postfix,
    TrustKitFormat.SPF: spf,
}
