"""The ``mrod`` command: the composition root (it alone may import lookupd and admin).

Exit status: 0 success; 1 the operation was refused or failed (one-line error on stderr);
2 bad command line, a bad value, or a bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mrod import __version__
from mrod.infra import config as configmod
from mrod.infra.errors import ConfigError, DatabaseNotReady, InvalidInput, MrodError
from mrod.cli import common, domain, lookup, recipient, relay, server, install as setup
from mrod.cli import bind
from mrod.cli import ops
from mrod.cli import admin, migrate, mtasts, node, notify, trustkit, user
from mrod.cli import recipientsource
from mrod.cli import helptext, listenerrors, logsetup

# Each area module has register(subparsers); its commands set ``func`` (args, config) -> int.
AREAS = [setup, server, admin, relay, domain, recipient, recipientsource, lookup, bind, user, ops, node, trustkit,
         notify, migrate, mtasts]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrod", description="Backup-MX manager for Postfix.")
    parser.add_argument("--config", metavar="FILE", help="TOML config (default: $MROD_CONFIG, else ./mrod.toml, "
                        "else /etc/mrod/mrod.toml for an installed mrod — never for a checkout's —,"
                        " else built-in defaults)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"mrod {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in AREAS:
        area.register(sub)
    helptext.complete(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logsetup.configure(args.log_level)
    try:
        cfg = configmod.load(args.config)
    except ConfigError as exc:
        common.error(str(exc))
        return 2
    try:
        return int(args.func(args, cfg) or 0)
    except DatabaseNotReady as exc:
        # Name the config that was read: a command run from the wrong directory (or without
        # --config) sees why instead of making a second database with `mrod init`.
        common.error(f"{exc} ({configmod.describe_source(cfg)})")
        return 1
    except InvalidInput as exc:
        common.error(str(exc))     # a bad value given: a usage error, like argparse's
        return 2
    except MrodError as exc:
        common.error(str(exc))
        return 1
    except OSError as exc:
        message = listenerrors.explain(exc, cfg)
        if message is None:
            raise
        common.error(message)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
