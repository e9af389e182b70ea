"""Small pieces every CLI area uses: running a coroutine on the database, output, errors."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar


from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.infra.config import Config, loader
from mrod.infra.engine import Target

T = TypeVar("T")


def error(message: str) -> None:
    print(f"mrod: error: {message}", file=sys.stderr)


def read_input(path: str, *, encoding: str = "utf-8", newline: str | None = None) -> str | None:
    """The text of FILE (``-``: standard input), or None after a one-line error."""
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding=encoding, newline=newline) as fh:
            return fh.read()
    except OSError as exc:
        error(f"{path}: {exc.strerror}")
    except UnicodeDecodeError as exc:
        error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    return None


def with_db(cfg: Config, work: Callable[[Connection], Awaitable[T]], *, create: bool = False) -> T:
    """Open the database (schema brought up to date), run ``work``, close."""

    async def run() -> T:
        async with db.opened(cfg.database, create=create) as conn:
            return await work(conn)

    local = db.local_file(cfg.database)
    if local is not None:      # a database server: no file of the service's to leave root-owned
        warn_if_not_owner(local)
    try:
        return asyncio.run(run())
    finally:
        name_foreign_database(cfg)


def name_foreign_database(cfg: Config) -> None:
    """A checkout's mrod working on a database that is not the checkout's — the system config
    named on purpose, or a file owned by someone else (root in a checkout, on the service's
    database) — says which one it used, last, so what it wrote is not taken for a test's."""
    if loader.CHECKOUT is None:
        return
    whose = ""
    if cfg.source is not None and cfg.source == loader.SYSTEM_CONFIG.resolve():
        whose = "the installed service's database"
    elif (local := db.local_file(cfg.database)) is not None:
        try:
            owner = local.stat().st_uid
        except OSError:
            return
        if owner != os.geteuid():
            whose = f"it belongs to {_user_name(owner)}"
    if whose:
        print(f"mrod: note: this command used database {Target.of(cfg.database).describe()}"
              f" ({loader.describe_source(cfg)}): {whose}, not this checkout's ({loader.CHECKOUT})", file=sys.stderr)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def warn_if_not_owner(path: Path) -> None:
    """root writing the service's database may leave root-owned -wal/-shm files the service
    cannot open: say how to run as its owner (nothing is refused)."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return
    if os.geteuid() == 0 and owner != 0:
        name = _user_name(owner)
        print(f"mrod: warning: {path} belongs to {name}; run as that user "
              f"(runuser -u {name} -- mrod …) so its files stay the service's", file=sys.stderr)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in table)]) for i, h in enumerate(headers)]
    out = sys.stdout
    out.write("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in table:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def bool_flag(parser: Any, name: str, help_on: str, help_off: str, *, dest: str) -> None:
    """--NAME / --no-NAME, default None (unchanged)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{name}", dest=dest, action="store_const", const=True, help=help_on)
    group.add_argument(f"--no-{name}", dest=dest, action="store_const", const=False, help=help_off)
    parser.set_defaults(**{dest: None})
