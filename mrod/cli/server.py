"""``mrod serve`` (lookupd + panel + background jobs under one command) and ``mrod lookupd``.

The composition root: ``components(cfg)`` lists what runs; each has ``async start()`` and
``async stop()``. Areas add their component here (lookupd and admin never import each other).

``mrod serve`` is a supervisor (mrod/cli/supervisor.py) of two processes, which it runs as
``mrod serve --role lookupd`` (lookupd and ``[metrics] listen``, on uvloop) and
``mrod serve --role panel`` (panel, API, jobs, BIND importer): lookups never wait behind the
panel or the jobs, and the lookupd sockets stay open across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from mrod.infra import db, statedir
from mrod.infra import config as configmod
from mrod.infra.config import Config

log = logging.getLogger("mrod")

ROLES = ("lookupd", "panel")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run lookupd, the admin panel and background jobs")
    # Internal: the supervisor runs its two children as `mrod serve --role ROLE`.
    p.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("lookupd", help="run only the Postfix lookup daemon")
    p.set_defaults(func=cmd_lookupd)


def lookupd_component(cfg: Config) -> Any:
    from mrod.lookupd import sockets
    from mrod.lookupd.daemon import Lookupd

    # Sockets handed over by systemd (mrod.socket) or by `mrod serve`'s supervisor.
    return Lookupd(cfg, sockets=sockets.inherited())


def components(cfg: Config, *, lookupd: bool = True, admin: bool = True, jobs: bool = True,
               metrics: bool | None = None) -> list[Any]:
    found: list[Any] = []
    if lookupd:
        found.append(lookupd_component(cfg))
    if admin:
        from mrod.admin.server import AdminServer

        found.append(AdminServer(cfg))
    if jobs:
        from mrod.operations.servejobs import jobs as ops_jobs

        found.extend(ops_jobs(cfg))
        from mrod.operations.postfixcache import PostfixCacheCheck   # after lookupd listens: a reload re-asks it

        found.append(PostfixCacheCheck(cfg))
    if metrics is None:
        metrics = lookupd or jobs
    if cfg.metrics.listen and metrics:
        from mrod.lookupd.metricsserver import MetricsServer

        found.append(MetricsServer(cfg))
    if jobs and cfg.bind.enabled:
        from mrod.bindimport.job import BindImportJob

        found.append(BindImportJob(cfg))
    return found


async def run_components(items: list[Any], name: str) -> None:
    """Start ``items``, serve until SIGTERM/SIGINT, stop them. ``name`` is the process in the
    "stopping" and "stopped" lines ("mrod lookupd", "the panel process of mrod serve"…): under
    `mrod serve` three processes stop at once and each says which it is."""
    from mrod.cli.supervisor import notify_ready
    from mrod.lookupd.daemon import stop_signals

    started: list[Any] = []
    with stop_signals() as stop:
        try:
            for item in items:
                if stop.is_set():     # told to stop while starting: start nothing more
                    break
                await item.start()
                started.append(item)
            notify_ready()
            await stop.wait()
        finally:
            log.info("%s stopping", name)
            for item in reversed(started):
                try:
                    await item.stop()
                except Exception:  # stop the rest regardless
                    log.exception("error while stopping %s", type(item).__name__)
            log.info("%s stopped", name)


async def prepare_database(cfg: Config) -> None:
    """The writer side upgrades the schema (only `mrod init` creates a database); lookupd only
    reads. A shared PostgreSQL that cannot be reached does not keep a node from starting: its
    lookupd answers from the snapshot on disk and the rest waits for the database."""
    from mrod.infra.errors import DatabaseUnreachable

    try:
        async with db.opened(cfg.database):
            pass
    except DatabaseUnreachable as exc:
        log.warning("%s; starting anyway: lookupd answers from its routing snapshot file (if this node has one),"
                    " the panel and jobs wait for the database", exc)


def announce(command: str, cfg: Config) -> None:
    """The start-up line: which config and database this process uses."""
    log.info("mrod %s starting: %s", command, configmod.describe(cfg))


def cmd_lookupd(args: argparse.Namespace, cfg: Config) -> int:
    statedir.prepare(cfg)      # before anything starts: refused in one line (StateDirUnusable)
    announce("lookupd", cfg)
    from mrod.lookupd import eventloop

    eventloop.run(run_components(components(cfg, admin=False, jobs=False), "mrod lookupd"))
    return 0


def cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    from mrod.cli import supervisor

    shared = os.environ.pop(supervisor.METRICS_VARIABLE, "")
    if args.role == "lookupd":
        # [metrics] listen lives here: lookupd's counters are in this process; the panel
        # process reads them through a private socket for its own /metrics.
        from mrod.lookupd import eventloop
        from mrod.lookupd.metricsserver import LookupdMetricsSocket

        items = components(cfg, admin=False, jobs=False, metrics=True)
        eventloop.run(run_components(items + ([LookupdMetricsSocket(shared)] if shared else []),
                                     "the lookupd process of mrod serve"))
        return 0
    if args.role == "panel":
        if shared:
            from mrod.lookupd.metricsserver import remote_source
            from mrod.operations import metrics

            metrics.register("lookupd", remote_source(shared))
        asyncio.run(run_components(components(cfg, lookupd=False, metrics=False), "the panel process of mrod serve"))
        return 0
    statedir.prepare(cfg)      # made by the supervisor, as the user both children run as
    announce("serve", cfg)
    asyncio.run(prepare_database(cfg))
    return supervisor.serve(cfg, supervisor.child_argv())
