"""``mrod admin``: the admin panel and JSON API alone (``mrod serve`` runs them beside lookupd
and the jobs); started and stopped like serve's components, after the schema is brought up to
date."""

from __future__ import annotations

import argparse
import asyncio

from mrod.infra.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("admin", help="run only the admin panel and JSON API")
    p.set_defaults(func=cmd_admin)


def cmd_admin(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.admin.server import AdminServer  # the CLI is the composition root
    from mrod.cli.server import announce, prepare_database, run_components

    announce("admin", cfg)

    async def main() -> None:
        await prepare_database(cfg)
        await run_components([AdminServer(cfg)], "mrod admin")

    asyncio.run(main())
    return 0
