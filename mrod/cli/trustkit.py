"""``mrod trust-kit --format rspamd|spamassassin|postscreen|postfix|spf`` — what the primary's
filters need to trust the backup MX nodes (mrod.operations.trustkit; docs/antispam.md)."""

from __future__ import annotations

import argparse

from mrod.cli import common
from mrod.infra.config import Config
from mrod.infra.enums import TRUST_KIT_FORMATS
from mrod.operations import trustkit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trust-kit", help="print what the primary's filters need to trust this cluster's "
                                        "backup MX nodes ([node] public_addresses of every node)")
    p.add_argument("--format", required=True, choices=[str(f) for f in TRUST_KIT_FORMATS],
                   help="rspamd (local_addrs + external_relay), spamassassin (trusted/internal_networks), "
                        "postscreen (access list), postfix (smtpd cidr access map), spf (mechanisms, example)")
    p.set_defaults(func=cmd_trust_kit)


def cmd_trust_kit(args: argparse.Namespace, cfg: Config) -> int:
    nodes = common.with_db(cfg, lambda conn: trustkit.for_cluster(conn, cfg))
    print(trustkit.render(args.format, nodes), end="")
    return 0
