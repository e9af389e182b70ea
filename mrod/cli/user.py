"""``mrod user add|passwd|rm|list|set``: the panel's users."""

from __future__ import annotations

import argparse
import getpass
import sys

from mrod.entities import users
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.infra.errors import InvalidInput
from mrod.cli import common
from mrod.infra import enums


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user", help="panel users")
    us = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = us.add_parser("add", help="add a user (password from a prompt, or --password-stdin)")
    a.add_argument("name")
    a.add_argument("--admin", action="store_true", help="every permission")
    a.add_argument("--perm", action="append", default=[], choices=enums.PERMISSIONS, metavar="PERMISSION",
                   help=f"grant a permission (repeatable): {', '.join(enums.PERMISSIONS)}")
    a.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    a.set_defaults(func=cmd_add)

    pw = us.add_parser("passwd", help="set a user's password (ends their sessions)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=cmd_passwd)

    s = us.add_parser("set", help="change a user's permissions, admin flag or state")
    s.add_argument("name")
    s.add_argument("--perm", action="append", default=None, choices=enums.PERMISSIONS, metavar="PERMISSION",
                   help="the permissions (repeatable; replaces the current set)")
    common.bool_flag(s, "admin", "make admin", "no longer admin", dest="is_admin")
    common.bool_flag(s, "enabled", "may sign in", "may not sign in (ends their sessions)", dest="enabled")
    s.add_argument("--email", metavar="ADDRESS|none",
                   help="contact address: notifications about the user's own domains go there ('none' removes it)")
    s.set_defaults(func=cmd_set)

    r = us.add_parser("rm", help="remove a user")
    r.add_argument("name")
    r.set_defaults(func=cmd_rm)

    t = us.add_parser("2fa-reset", help="remove a user's two-factor sign-in (a lost app); ends their sessions")
    t.add_argument("name", help="the user whose two-factor sign-in is removed")
    t.set_defaults(func=cmd_2fa_reset)

    ls = us.add_parser("list", help="list users")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def read_password(from_stdin: bool) -> str:
    """From stdin's first line, or asked twice at the terminal; checked before any work."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise InvalidInput("password", "no terminal to ask on; use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise InvalidInput("password", "the two passwords differ")
    return users.password(password)


def cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    users.username(args.name)
    password = read_password(args.password_stdin)
    user = common.with_db(cfg, lambda c: users.add(c, Actor.cli(), args.name, password, is_admin=args.admin,
                                                     perms=args.perm, rounds=cfg.admin.bcrypt_rounds))
    what = "admin" if user.is_admin else ", ".join(sorted(user.permissions)) or "no permissions"
    print(f"user {user.name} added: {what}")
    return 0


def cmd_passwd(args: argparse.Namespace, cfg: Config) -> int:
    password = read_password(args.password_stdin)
    user = common.with_db(cfg, lambda c: users.set_password(c, Actor.cli(), args.name, password,
                                                              rounds=cfg.admin.bcrypt_rounds))
    print(f"password of {user.name} changed; their sessions ended")
    return 0


def cmd_set(args: argparse.Namespace, cfg: Config) -> int:
    if args.perm is None and args.is_admin is None and args.enabled is None and args.email is None:
        common.error("nothing to change: give --perm, --admin/--no-admin, --enabled/--no-enabled or --email")
        return 2
    if args.email is not None:
        users.contact(args.email)      # a bad address is refused before the database is opened
    user = common.with_db(cfg, lambda c: users.update(c, Actor.cli(), args.name, is_admin=args.is_admin,
                                                        enabled=args.enabled, perms=args.perm, email=args.email))
    print(f"user {user.name}: {_describe(user)}")
    return 0


def cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    user = common.with_db(cfg, lambda c: users.remove(c, Actor.cli(), args.name))
    print(f"user {user.name} removed")
    return 0


def cmd_2fa_reset(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.entities import totp

    user, had = common.with_db(cfg, lambda c: totp.reset(c, Actor.cli(), args.name))
    if had:
        print(f"two-factor sign-in of {user.name} removed; their sessions ended. They sign in with the password "
              "and set it up again under Profile (where [admin] two_factor_required asks for it, at once).")
    else:
        print(f"{user.name} had no two-factor sign-in; nothing to remove (their sessions ended)")
    return 0


def cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.entities import totp

    async def read(conn):  # noqa: ANN001, ANN202 - local callback, typed by with_db
        return await users.list_all(conn), await totp.enrolled_ids(conn)

    items, two_factor = common.with_db(cfg, read)
    if args.json:
        common.print_json([u.as_dict() | {"two_factor": u.id in two_factor} for u in items])
    else:
        common.print_table(["id", "name", "permissions", "enabled", "2fa"],
                           [(u.id, u.name, _describe(u), "yes" if u.enabled else "no",
                             "yes" if u.id in two_factor else "no") for u in items])
    return 0


def _describe(user: users.User) -> str:
    return "admin" if user.is_admin else ",".join(sorted(user.permissions)) or "-"
