"""The BIND importer: every zone a BIND server serves becomes a relay domain, routed by DNS.

``run(conn, cfg, actor)`` — discover the zones ([bind] sources), look up routes ([bind]
strategies), plan (planner.py) and apply the plan in ONE transaction, recorded in
import_run and the audit trail. A failing run changes nothing and is recorded as failed.
``preview(conn, cfg)`` — the same plan, nothing written. ``runs.recent(conn)`` — the history.

Slow work happens before the write lock is taken: reading named.conf / zone files / the
catalog (in a thread), DNS lookups (concurrent, bounded). The plan is made inside the
transaction from the database as it is then, so two runs never act on stale state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING


from mrod.infra.dbapi import Connection
from mrod.infra import db
from mrod.entities.audit import Actor
from mrod.infra.errors import MrodError
from mrod.bindimport import apply as applier
from mrod.bindimport import planner, runs, sources
from mrod.bindimport.planner import Plan
from mrod.bindimport.routes import NoRoute, Route, RouteFinder
from mrod.bindimport.sources import Discovery

if TYPE_CHECKING:
    from mrod.infra.config import Config

__all__ = ["Result", "ImportFailed", "run", "preview", "runs", "importer_actor", "ACTOR_NAME"]

log = logging.getLogger("mrod.bindimport")
ACTOR_NAME = "bind-import"


class ImportFailed(MrodError):
    """An unexpected fault during a run (the run changed nothing and is recorded as failed)."""


@dataclass
class Result:
    plan: Plan
    discovery: Discovery
    dry_run: bool
    duration_ms: int
    run_id: int | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = self.plan.counts()
        return {
            "discovered": len(self.discovery.zones), "added": c["add"], "updated": c["update"],
            "disabled": c["disable"], "deleted": c["delete"], "unchanged": c["unchanged"],
            "skipped": c["skipped"] + len(self.discovery.skipped),
            "problems": c["problems"] + len(self.discovery.warnings),
        }


def importer_actor(starter: Actor) -> Actor:
    """Changes are made as ``bind-import`` (origin bind, so they never count as an operator's
    manual edits); ``remote`` says who started the run."""
    if starter.origin == "bind":
        return starter
    remote = f"{starter.origin}:{starter.name}"
    if starter.remote and starter.remote != "local":
        remote += f"@{starter.remote}"
    return Actor(name=ACTOR_NAME, origin="bind", remote=remote, user_id=starter.user_id)


async def _routes(conn: Connection, cfg: "Config", discovery: Discovery) -> dict[str, Route | NoRoute]:
    wanted = planner.needs_route(discovery.zones, await applier.current_state(conn))
    return await RouteFinder(cfg.bind).find_all(wanted)


def _messages(discovery: Discovery, plan: Plan) -> list[str]:
    return [*discovery.warnings, *(f"{name}: {text}" for name, text in plan.problems)]


async def run(
    conn: Connection,
    cfg: "Config",
    actor: Actor,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Result:
    """One import run (or, with dry_run, its plan only). Raises MrodError when it fails."""
    actor = importer_actor(actor)
    started_at, t0 = db.now(), time.monotonic()
    now = now or datetime.now(timezone.utc)
    stamp = db.stamp(now)
    grace = timedelta(hours=cfg.bind.grace_hours)
    try:
        discovery = await asyncio.to_thread(sources.discover, cfg.bind, cfg.base_dir)
        found_routes = await _routes(conn, cfg, discovery)
        if dry_run:
            plan = planner.plan(discovery.zones, await applier.current_state(conn), found_routes,
                                await applier.relay_refs(conn), now, grace)
            return Result(plan, discovery, True, _ms(t0), messages=_messages(discovery, plan))
        async with db.transaction(conn):
            plan = planner.plan(discovery.zones, await applier.current_state(conn), found_routes,
                                await applier.relay_refs(conn), now, grace)
            await applier.apply(conn, plan, actor, stamp)
            result = Result(plan, discovery, False, _ms(t0), messages=_messages(discovery, plan))
            result.run_id = await runs.record(
                conn, actor, started_at=started_at, finished_at=db.now(), duration_ms=result.duration_ms,
                counts=result.counts, messages=result.messages)
        log.info("BIND import run #%s: %s", result.run_id,
                 ", ".join(f"{v} {k}" for k, v in result.counts.items()))
        return result
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not isinstance(exc, MrodError):
            log.exception("BIND import failed")
            exc = ImportFailed(f"BIND import failed: {type(exc).__name__}: {exc}")
        if not dry_run:
            await _record_failure(conn, actor, started_at, t0, str(exc))
        raise exc from None


async def _record_failure(conn: Connection, actor: Actor, started_at: str, t0: float, error: str) -> None:
    try:
        async with db.transaction(conn):
            await runs.record(conn, actor, started_at=started_at, finished_at=db.now(),
                              duration_ms=_ms(t0), counts={}, messages=[], error=error)
    except Exception:  # the run's own error is the one to report
        log.exception("could not record the failed BIND import run")


async def preview(conn: Connection, cfg: "Config", actor: Actor | None = None) -> Result:
    """What a run would do now; writes nothing."""
    return await run(conn, cfg, actor or Actor.system(ACTOR_NAME), dry_run=True)


def _ms(t0: float) -> int:
    return int((time.monotonic() - t0) * 1000)
