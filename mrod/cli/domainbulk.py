"""Many domains from the command line: ``mrod domain set A B C …`` /
``--filter KEY=VALUE`` / ``-`` (names on stdin), ``mrod domain export`` (CSV, every field) and
``mrod domain import-csv FILE [--preview]`` (all or nothing). The work is mrod.entities.domainbulk and
mrod.entities.csvio, as for the panel and the API."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mrod.entities import csvio, domainbulk, domains, users
from mrod.entities.audit import Actor
from mrod.infra.config import Config
from mrod.infra.errors import InvalidInput
from mrod.cli import common

FILTER_HELP = ("select every domain matching KEY=VALUE (KEY: q = name contains, enabled = yes/no, source, "
               "relay ('-': none), recipients); repeat to combine")


def register(ds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = ds.add_parser("export", help="domains as CSV, every field (stdout)")
    ex.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help=FILTER_HELP)
    ex.set_defaults(func=cmd_export)
    im = ds.add_parser("import-csv", help="add and change domains from CSV FILE ('-': stdin), all or nothing")
    im.add_argument("file", metavar="FILE")
    im.add_argument("--preview", action="store_true", help="say what would change, write nothing")
    im.set_defaults(func=cmd_import_csv)


def selection(args: argparse.Namespace) -> tuple[list[str] | None, dict[str, Any] | None]:
    """(names, filters) of ``mrod domain set``: names given (``-`` reads more from stdin), or filters."""
    given = list(args.domains)
    if "-" in given:
        given = [n for n in given if n != "-"] + domainbulk.parse_names(sys.stdin)
    filters = domainbulk.parse_filters(args.filter) if args.filter else None
    if filters is not None and given:
        raise InvalidInput("domains", "name domains or give --filter, not both")
    if filters is None and not given:
        raise InvalidInput("domains", "name at least one domain, '-' to read names from stdin, or --filter")
    return (None if filters is not None else given), filters


def set_many(cfg: Config, names: list[str] | None, filters: dict[str, Any] | None, spec: dict[str, Any]) -> int:
    result = common.with_db(cfg, lambda c: domainbulk.apply(c, Actor.cli(), spec, domain_names=names, filters=filters))
    for name in result.changed:
        print(f"domain {name} changed")
    print(f"{len(result.changed)} domain(s) changed, {len(result.unchanged)} had these settings already")
    return 0


def cmd_export(args: argparse.Namespace, cfg: Config) -> int:
    filters = domainbulk.parse_filters(args.filter)

    async def work(conn):  # noqa: ANN001, ANN202 - local callback, typed by with_db
        page = await domains.search(conn, **filters, limit=None)
        return csvio.export(page.domains, {u.id: u.name for u in await users.list_all(conn)})

    sys.stdout.write(common.with_db(cfg, work))
    return 0


def cmd_import_csv(args: argparse.Namespace, cfg: Config) -> int:
    text = common.read_input(args.file, encoding="utf-8-sig", newline="")
    if text is None:
        return 1
    try:
        report = common.with_db(cfg, lambda c: csvio.run(c, Actor.cli(), text, apply=not args.preview))
    except csvio.CsvRefused as exc:
        for number, why in exc.report.problems:
            print(f"{args.file}:{number}: {why}", file=sys.stderr)
        common.error(f"{len(exc.report.problems)} line(s) refused; nothing was imported")
        return 1
    for name in report.added:
        print(f"add {name}")
    for name, fields in report.changed:
        print(f"change {name}: {', '.join(fields)}")
    verb = "would be" if args.preview else "were"
    print(f"{len(report.added)} domain(s) {verb} added, {len(report.changed)} changed, {report.unchanged} unchanged"
          + (" (preview: nothing written)" if args.preview else ""))
    return 0
