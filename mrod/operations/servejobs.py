"""The background jobs of operating a backup MX, for ``mrod serve``: primary health (with
auto-flush; next hops of host-override and MX routes too, nexthops.py), queue refresh (which
feeds the policy's per-domain quota), per-domain retention (retention.py), DNS checks,
notifications (mrod/notify), and on PostgreSQL this node's lookupd sync status into the shared
database (nodereports.py).

An expected trouble — Postfix down or not installed, the database not there yet — is logged
as one warning when it starts and one line when it ends, not a traceback every interval.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from mrod.infra.engine import Target
from mrod.operations import checks, flushrequests, holdqueue, nodereports, queuestats, retention, syncstatus
from mrod.operations.deliveries import DeliveryWatch
from mrod.operations.postqueue import QueueUnavailable
from mrod.infra import db
from mrod.infra.config import Config
from mrod.infra.errors import MrodError
from mrod.operations.health import HealthMonitor
from mrod.operations.periodic import PeriodicJob
from mrod.operations.nexthops import NextHopMonitor
from mrod.notify import channels as notify_channels, dispatcher as notify_dispatcher
from mrod.recipientsources import job as sourcejob
from mrod.mtasts.refresh import Refresher

log = logging.getLogger("mrod.jobs")


class _Quiet:
    def __init__(self, name: str, run: Callable[[], Awaitable[object]], interval: float) -> None:
        self.name, self.run, self.trouble = name, run, ""
        self.interval = interval      # for the warning: how soon the operator sees it tried again

    async def __call__(self) -> None:
        try:
            await self.run()
        except MrodError as exc:
            if str(exc) != self.trouble:
                log.warning("%s: %s (retrying every %s)", self.name, exc, syncstatus.seconds(self.interval))
            self.trouble = str(exc)
            return
        if self.trouble:
            log.info("%s: working again", self.name)
            self.trouble = ""


def _quiet_job(name: str, interval: float, run: Callable[[], Awaitable[object]], *, first_delay: float = 0.0,
               said: str = "") -> PeriodicJob:
    """A PeriodicJob whose expected trouble is logged the _Quiet way (``said``: its name there)."""
    return PeriodicJob(name, interval, _Quiet(said or name, run, interval), first_delay=first_delay)


def jobs(cfg: Config) -> list[PeriodicJob]:
    found = []
    if cfg.health.enabled:
        monitor = HealthMonitor(cfg)
        found.append(_quiet_job("health", cfg.health.interval, monitor.run_once))
        if cfg.health.flush_on_up:   # host-override and MX routes are flushed too, not only relays
            hops = NextHopMonitor(cfg)
            found.append(_quiet_job("nexthops", cfg.health.interval, hops.run_once, first_delay=2.0))
    if cfg.queue.enabled:
        async def refresh() -> None:
            # Flushes other nodes' panels asked of this node first: the reading then shows the result.
            await flushrequests.take(cfg)
            try:        # held domains' new mail on hold, released ones' given back
                await holdqueue.apply(cfg)
            except QueueUnavailable as exc:
                log.warning("domain holds not applied to the queue: %s", exc)
            await queuestats.refresh(cfg)
        found.append(_quiet_job("queue", cfg.queue.interval, refresh, first_delay=1.0))
        # Mail the primary refused after this node accepted it, counted from Postfix's log.
        found.append(_quiet_job("deliveries", cfg.health.interval, DeliveryWatch(cfg).run_once, first_delay=3.0))
        # Per-domain retention (domain queue_lifetime): reads the queue only when a domain has one.
        found.append(_quiet_job("retention", cfg.queue.interval, lambda: retention.run_once(cfg), first_delay=5.0))
    if cfg.checks.enabled:
        async def run_checks() -> None:
            async with db.opened(cfg.database) as conn:
                results = await checks.run(cfg, conn)
            bad = [r.domain for r in results if r.status == "error"]
            if bad:
                log.warning("DNS checks: %d domain(s) with errors (mrod check): %s", len(bad), ", ".join(bad[:10]))
        # Not at once: a restart should not hit every domain's name servers before anything else.
        found.append(_quiet_job("checks", cfg.checks.interval, run_checks, first_delay=min(60.0, cfg.checks.interval)))
    if cfg.recipient_sources.enabled:      # recipient lists from the primaries' directories
        found.append(_quiet_job("recipient sources", cfg.recipient_sources.interval,
                                lambda: sourcejob.sync_all(cfg), first_delay=5.0))
    if cfg.mta_sts.enabled:
        async def refresh_policies() -> None:
            # MTA-STS policies and DANE verdicts of every enabled domain (mrod.mtasts.refresh).
            # Made at each run, as the checks' Checker: a host without resolv.conf fails the
            # run (logged), not the start of mrod serve.
            async with db.opened(cfg.database) as conn:
                await Refresher(cfg).run(conn)
        found.append(_quiet_job("mta-sts", cfg.mta_sts.interval, refresh_policies, first_delay=5.0))
    if Target.of(cfg.database).shared:     # several nodes: every node's panel shows this node's lookupd staleness
        found.append(_quiet_job("nodestatus", nodereports.REPORT_EVERY, lambda: nodereports.report(cfg),
                                first_delay=2.0, said="node status"))
    if cfg.notify.enabled and notify_channels.configured(cfg):
        # After the first health and queue rounds: it tells what they found.
        found.append(_quiet_job("notify", cfg.notify.interval, lambda: notify_dispatcher.run_round(cfg),
                                first_delay=5.0, said="notifications"))
    return found
