"""``mrod init`` and ``mrod postfix-config``."""

from __future__ import annotations

import argparse
import sys


from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.answers import postfixlines
from mrod.entities import users
from mrod.infra.config import Config
from mrod.infra.engine import Target
from mrod.cli import common


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="create the database (or bring its schema up to date)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("postfix-config", help="print the main.cf / master.cf lines for this configuration")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--main", action="store_true", help="only main.cf lines")
    which.add_argument("--master", action="store_true", help="only master.cf lines")
    which.add_argument("--postconf", action="store_true",
                       help="print postconf commands that merge mrod's settings into your main.cf and master.cf")
    which.add_argument("--apply", action="store_true",
                       help="show those changes as a diff, make them, then reload (or start) Postfix")
    p.add_argument("--postfix-dir", metavar="DIR",
                   help="Postfix's configuration directory for --postconf/--apply (default: [postfix] config_dir, "
                        "else /etc/postfix)")
    p.set_defaults(func=cmd_postfix_config)


def cmd_init(args: argparse.Namespace, cfg: Config) -> int:
    async def work(conn: Connection) -> tuple[int, str | None]:
        return await db.schema_version(conn), await users.ensure_first_admin(conn, cfg.admin.bcrypt_rounds)

    version, password = common.with_db(cfg, work, create=True)
    print(f"database {Target.of(cfg.database).describe()} ready (schema version {version})")
    if password is not None:
        print(f"created the first panel user 'admin' with the password: {password}\n"
              "it is shown only this once; sign in and change it under Profile")
    return 0


def cmd_postfix_config(args: argparse.Namespace, cfg: Config) -> int:
    if args.postconf or args.apply:
        from mrod.cli import postfixconfig

        return postfixconfig.run(args, cfg)
    if not args.master:
        sys.stdout.write(postfixlines.main_cf(cfg))
    if not args.main and not args.master:
        sys.stdout.write("\n")
    if not args.main:
        sys.stdout.write(postfixlines.master_cf(cfg))
    return 0
