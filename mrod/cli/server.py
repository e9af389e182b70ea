"""``mrod serve`` (lookupd + panel + background jobs in one process) and ``mrod lookupd``.

The composition root: ``components(cfg)`` lists what runs; each has ``async start()`` and
``async stop()``. Areas add their component here (lookupd and admin never import each other).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from mrod.infra import db
from mrod.infra import config as configmod
from mrod.infra.config import Config
from mrod.infra.engine import refuse_postgresql_for_lookupd

log = logging.getLogger("mrod")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run lookupd, the admin panel and background jobs")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("lookupd", help="run only the Postfix lookup daemon")
    p.set_defaults(func=cmd_lookupd)


def lookupd_component(cfg: Config) -> Any:
    from mrod.lookupd.daemon import Lookupd

    return Lookupd(cfg)


def components(cfg: Config, *, lookupd: bool = True, admin: bool = True, jobs: bool = True) -> list[Any]:
    found: list[Any] = []
    if lookupd:
        found.append(lookupd_component(cfg))
    if admin:
        from mrod.admin.server import AdminServer

        found.append(AdminServer(cfg))
    if jobs:
        from mrod.operations.opsjobs import jobs as ops_jobs

        found.extend(ops_jobs(cfg))
        from mrod.operations.postfixcache import PostfixCacheCheck   # issue 14: after lookupd listens

        found.append(PostfixCacheCheck(cfg))
    if cfg.metrics.listen and (lookupd or jobs):
        from mrod.lookupd.metricsserver import MetricsServer

        found.append(MetricsServer(cfg))
    if jobs and cfg.bind.enabled:
        from mrod.bindimport.job import BindImportJob

        found.append(BindImportJob(cfg))
    return found


async def run_components(items: list[Any]) -> None:
    from mrod.lookupd.daemon import wait_for_signal

    started: list[Any] = []
    try:
        for item in items:
            await item.start()
            started.append(item)
        await wait_for_signal()
    finally:
        log.info("stopping")
        for item in reversed(started):
            try:
                await item.stop()
            except Exception:  # stop the rest regardless
                log.exception("error while stopping %s", type(item).__name__)


async def prepare_database(cfg: Config) -> None:
    """The writer side upgrades the schema (only `mrod init` creates a database); lookupd only reads."""
    async with db.opened(cfg.database):
        pass


def announce(command: str, cfg: Config) -> None:
    """The start-up line: which config and database this process uses."""
    log.info("mrod %s starting: %s", command, configmod.describe(cfg))


def cmd_lookupd(args: argparse.Namespace, cfg: Config) -> int:
    refuse_postgresql_for_lookupd(cfg.database)     # issue 11: until lookupd reads PostgreSQL
    announce("lookupd", cfg)
    asyncio.run(run_components(components(cfg, admin=False, jobs=False)))
    return 0


def cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    refuse_postgresql_for_lookupd(cfg.database)     # issue 11: until lookupd reads PostgreSQL
    announce("serve", cfg)
    async def main() -> None:
        await prepare_database(cfg)
        await run_components(components(cfg))

    asyncio.run(main())
    return 0
