"""The policy service: one Postfix policy request -> one action, over mrod.answers.policy.

Its stores (lookupd/stores.py) say where decisions run: on SQLite they read the database on
the event loop (microseconds); on PostgreSQL a decision is a round trip that may hang (a
stopped server, a partition), so the stores are ``off_loop`` and it runs in a worker thread of
the policy's own, bounded by the deadline; the lookups on the event loop never wait for it.
A recipient callout to a primary runs as a task of that connection, and its result is
stored from a worker thread.
Most requests are decided before any of that, from memory (issue 23.3): the routing
snapshot with its policy fields and this node's primary health states (primaryhealth.py),
on the event loop, reading no database (mrod.answers.policymemory). Only a paused domain, one
with a queue quota or recipient policy ``verify``, or no snapshot yet, takes the path above.

On any internal fault the service sends nothing and closes the connection (the policy
protocol's rule): Postfix then applies its default action, a 4xx — never a rejection.

One fault is not internal: a shared database that is unreachable (DatabaseUnreachable). A backup MX
must keep accepting then, so the service answers as ``[policy] when_database_unreachable``
says — ``accept``: DUNNO (pause, quota and verification wait for the database; the lookup
maps still decide from their snapshot which domains are relayed), ``defer``: DEFER_IF_PERMIT.
A callout whose result cannot be stored still decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Awaitable, Callable, Mapping

from mrod.answers import policy, policymemory, routing
from mrod.answers.snapshot import RouteSnapshot
from mrod.infra.config import PolicyConfig
from mrod.infra.errors import DatabaseNotReady, DatabaseUnreachable

from mrod.lookupd.ratelog import RateLimitedLog
from mrod.infra.engine import Target
from mrod.lookupd.primaryhealth import PrimaryHealth
from mrod.lookupd.stores import RouteStores, policy_stores

log = logging.getLogger("mrod.policy")

Verifier = Callable[[policy.Callout], Awaitable[bool | None]]


class PolicyService:
    def __init__(self, database: Path | str | Target, settings: PolicyConfig, options: routing.Options,
                 verifier: Verifier, deadline: float = 5.0, routes: RouteStores | None = None,
                 health_interval: float = 60.0) -> None:
        self.target = Target.of(database)
        # The lookups' stores: their snapshot decides most requests (None: always the database).
        self.routes = routes
        self.primaries = PrimaryHealth(self.target, options.node, health_interval)
        self.settings = settings
        self.options = options
        self.verifier = verifier
        self.deadline = deadline
        self._stores = policy_stores(self.target)
        self._faults = RateLimitedLog(log)
        self.decisions: Counter[str] = Counter()   # reason -> count, for metrics
        self.asked_database = 0                     # requests that took the database path
        self.outage = False                         # deciding without the (shared) database
        # Stores a decision may hang on: decisions off the event loop, in threads of their own
        # (a hung one must not take the threads other work uses).
        self._threads = ThreadPoolExecutor(4, "mrod-policy") if self._stores.off_loop else None

    @property
    def off_loop(self) -> bool:
        """Whether decisions must be awaited through ``evaluate_off_loop``."""
        return self._threads is not None

    async def evaluate_off_loop(self, request: Mapping[str, str]) -> policy.Decision | policy.Callout | None:
        """``evaluate`` in a worker thread, bounded by the deadline: a decision the database
        does not answer in time is the database-unreachable answer."""
        assert self._threads is not None
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._threads, self.evaluate, request), self.deadline)
        except TimeoutError:
            why = f"database {self.target.describe()} did not answer within {self.deadline:g}s"
            self._stores.abandon(why)
            return self._unreachable(why)

    def start(self) -> None:
        """Start keeping this node's primary health in memory."""
        self.primaries.start()

    def from_memory(self, request: Mapping[str, str]) -> policy.Decision | None:
        """The decision from memory, on the event loop; None: ask ``evaluate`` (the database)."""
        routes = self.routes
        if routes is None or not routes.live:
            return None      # a shared database gone: its configured answer, as before
        try:
            snap = routes.get()
        except Exception:  # noqa: BLE001 - no snapshot yet, a busy file: the database path says
            return None
        if not isinstance(snap, RouteSnapshot):
            return None       # the snapshot is (re)loading: the database answers meanwhile
        try:
            return policymemory.decide(snap, request, self.settings, self.options, self.primaries)
        except Exception:  # noqa: BLE001 - the database path decides (or fails safe) instead
            self._faults.exception("policy: deciding from memory failed; asking the database")
            return None

    def close(self) -> None:
        self._stores.close()

    def shutdown(self) -> None:
        self.primaries.shutdown()
        self._stores.shutdown()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    def evaluate(self, request: Mapping[str, str]) -> policy.Decision | policy.Callout | None:
        """A decision, a callout to run, or None on an internal fault (then: close, no reply).
        An unreachable database is not a fault: the configured answer for it."""
        self.asked_database += 1
        stores = self._stores
        try:
            store = stores.get()
        except DatabaseUnreachable as exc:
            return self._unreachable(str(exc))
        except Exception:  # noqa: BLE001 - never a decision from a broken state
            stores.close()
            self._faults.exception("policy request failed; closing so Postfix applies its default action")
            return None
        broken = True
        try:
            decision = policy.evaluate(store, request, self.settings, self.options, primaries=self.primaries)
            broken = False
        except DatabaseUnreachable as exc:
            return self._unreachable(str(exc))
        except Exception:  # noqa: BLE001 - never a decision from a broken state
            self._faults.exception("policy request failed; closing so Postfix applies its default action")
            return None
        finally:
            stores.done(store, broken)
        if self.outage:
            self.outage = False
            log.info("policy: database %s reachable again: deciding from it", self.target.describe())
        return decision

    def _unreachable(self, why: str) -> policy.Decision:
        if not self.outage:         # once per outage, not once per recipient
            self.outage = True
            log.warning("policy: %s; answering as [policy] when_database_unreachable = %r until it is back",
                        why, self.settings.when_database_unreachable)
        return policy.when_database_unreachable(self.settings.when_database_unreachable)

    async def run_callout(self, callout: policy.Callout) -> policy.Decision | None:
        try:
            result = await self.verifier(callout)
            if result is not None:
                entry = policy.cache_entry(callout, result, self.settings)
                try:
                    await asyncio.wait_for(asyncio.to_thread(self._record, entry), self.deadline)
                except (DatabaseNotReady, TimeoutError) as exc:     # the answer stands; only the cache misses it
                    self._faults.warning("policy: callout result for %s not cached: %s", callout.address, exc)
            return policy.after_callout(callout, result)
        except Exception:  # noqa: BLE001
            self._faults.exception("policy callout for %s failed; closing", callout.address)
            return None

    def _record(self, entry: tuple[str, int, str, str]) -> None:
        self._stores.record(entry, self.deadline)

    def count(self, decision: policy.Decision) -> policy.Decision:
        self.decisions[decision.reason] += 1
        if decision.action != policy.DUNNO:
            log.info("policy: %s (%s)", decision.action, decision.reason)
        return decision


def default_verifier(settings: PolicyConfig) -> Verifier:
    from mrod.answers import callout

    async def verify(c: policy.Callout) -> bool | None:
        return await callout.verify(c, helo=settings.helo_name, sender=settings.callout_sender,
                                    timeout=settings.callout_timeout)

    return verify

