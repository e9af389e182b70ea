"""The background jobs of operating a backup MX, for ``mrod serve``: primary health (with
auto-flush; next hops of host-override and MX routes too, nexthops.py), queue refresh (which
feeds the policy's per-domain quota), DNS checks, and on PostgreSQL this node's lookupd sync
status into the shared database (nodestatus.py).

An expected trouble — Postfix down or not installed, the database not there yet — is logged
as one warning when it starts and one line when it ends, not a traceback every interval.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from mrod.operations import checks, flushrequests, nodestatus, queue
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.operations.health import HealthMonitor
from mrod.operations.jobs import PeriodicJob
from mrod.operations.nexthops import NextHopMonitor

log = logging.getLogger("mrod.jobs")


class _Quiet:
    def __init__(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        self.name, self.run, self.trouble = name, run, ""

    async def __call__(self) -> None:
        try:
            await self.run()
        except MrodError as exc:
            if str(exc) != self.trouble:
                log.warning("%s: %s (retrying every interval)", self.name, exc)
            self.trouble = str(exc)
            return
        if self.trouble:
            log.info("%s: working again", self.name)
            self.trouble = ""


def jobs(cfg: Config) -> list[PeriodicJob]:
    found = []
    if cfg.health.enabled:
        monitor = HealthMonitor(cfg)
        found.append(PeriodicJob("health", cfg.health.interval, _Quiet("health", monitor.run_once)))
        if cfg.health.flush_on_up:   # host-override and MX routes are flushed too, not only relays
            hops = NextHopMonitor(cfg)
            found.append(PeriodicJob("nexthops", cfg.health.interval, _Quiet("nexthops", hops.run_once),
                                     first_delay=2.0))
    if cfg.queue.enabled:
        async def refresh() -> None:
            # Flushes other nodes' panels asked of this node first: the reading then shows the result.
            await flushrequests.take(cfg)
            await queue.refresh(cfg)
        found.append(PeriodicJob("queue", cfg.queue.interval, _Quiet("queue", refresh), first_delay=1.0))
    if cfg.checks.enabled:
        async def run_checks() -> None:
            async with db.opened(cfg.database) as conn:
                results = await checks.run(cfg, conn)
            bad = [r.domain for r in results if r.status == "error"]
            if bad:
                log.warning("DNS checks: %d domain(s) with errors (mrod check): %s", len(bad), ", ".join(bad[:10]))
        # Not at once: a restart should not hit every domain's name servers before anything else.
        found.append(PeriodicJob("checks", cfg.checks.interval, _Quiet("checks", run_checks),
                                 first_delay=min(60.0, cfg.checks.interval)))
    if cfg.database.url:     # several nodes: every node's panel shows this node's lookupd staleness
        found.append(PeriodicJob("nodestatus", nodestatus.REPORT_EVERY,
                                 _Quiet("node status", lambda: nodestatus.report(cfg)), first_delay=2.0))
    return found
