"""``mrod migrate-to URL``: move this installation's SQLite database into an empty PostgreSQL
database (mrod.infra.copydb), then point ``[database] url`` at it."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from mrod.infra.config import Config
from mrod.infra.engine import Target


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate-to", help="copy the SQLite database into an empty PostgreSQL database")
    p.add_argument("url", metavar="URL", help="postgresql://user@host[:port]/dbname[?sslmode=…]")
    p.add_argument("--password-file", metavar="FILE",
                   help="a file whose first line is the password (else PGPASSWORD or ~/.pgpass)")
    p.set_defaults(func=cmd_migrate_to)


def cmd_migrate_to(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.infra import copydb     # psycopg only for this command

    if not args.url.startswith(("postgresql://", "postgres://")):
        raise copydb.CopyRefused("the target must be a postgresql:// URL")
    if cfg.database.url:
        raise copydb.CopyRefused("this configuration uses PostgreSQL already ([database] url is set)")
    password_file = str(Path(args.password_file).resolve()) if args.password_file else ""
    target = Target(url=args.url, password_file=password_file)
    done = asyncio.run(copydb.copy(cfg.database.path, target))
    print(f"copied {done.rows} rows of {len(done.tables)} tables from {cfg.database.path} to {target.describe()}"
          f" (schema version {done.version})")
    print(f'now set [database] url = "{target.describe()}"' +
          (f' and password_file = "{password_file}"' if password_file else "") + ", and restart mrod")
    return 0
