"""The policy service: one Postfix policy request -> one action, over mrod.answers.policy.

On SQLite, decisions read the database on the event loop (microseconds). On PostgreSQL a
decision is a round trip that may hang (a stopped server, a partition), so it runs in a worker
thread of the policy's own, bounded by the deadline; the lookups on the event loop never wait
for it. A recipient callout to a primary runs as a task of that connection, and its result is
stored from a worker thread.
On any internal fault the service sends nothing and closes the connection (the policy
protocol's rule): Postfix then applies its default action, a 4xx — never a rejection.

One fault is not internal: a shared PostgreSQL that is unreachable. A backup MX
must keep accepting then, so the service answers as ``[policy] when_database_unreachable``
says — ``accept``: DUNNO (pause, quota and verification wait for the database; the lookup
maps still decide from their snapshot which domains are relayed), ``defer``: DEFER_IF_PERMIT.
A callout whose result cannot be stored still decides.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Awaitable, Callable, Mapping, cast

from mrod.answers import policy, routing
from mrod.infra.config import PolicyConfig
from mrod.infra.errors import DatabaseNotReady

from mrod.lookupd.ratelog import RateLimitedLog
from mrod.infra.engine import Target
from mrod.lookupd.pgpolicy import PgPolicyStores, record_on_postgresql
from mrod.lookupd.storeholder import StoreHolder

log = logging.getLogger("mrod.policy")

Verifier = Callable[[policy.Callout], Awaitable[bool | None]]


class PolicyService:
    def __init__(self, database: Path | str | Target, settings: PolicyConfig, options: routing.Options,
                 verifier: Verifier, deadline: float = 5.0) -> None:
        self.target = Target.of(database)
        self.db_path = self.target.path or Path()
        self.settings = settings
        self.options = options
        self.verifier = verifier
        self.deadline = deadline
        self._stores: StoreHolder[policy.PolicyStore] | PgPolicyStores = (
            PgPolicyStores(self.target) if self.target.url else StoreHolder(self.db_path, policy.PolicyStore))
        self._faults = RateLimitedLog(log)
        self.decisions: Counter[str] = Counter()   # reason -> count, for metrics
        self.outage = False                         # deciding without the (PostgreSQL) database
        # PostgreSQL: decisions off the event loop, in threads of their own (a hung one must
        # not take the threads other work uses).
        self._threads = ThreadPoolExecutor(4, "mrod-policy") if self.target.url else None

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
            assert isinstance(self._stores, PgPolicyStores)
            self._stores.abandon(why)
            return self._unreachable(why)

    def close(self) -> None:
        self._stores.close()

    def shutdown(self) -> None:
        self._stores.shutdown()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    def evaluate(self, request: Mapping[str, str]) -> policy.Decision | policy.Callout | None:
        """A decision, a callout to run, or None on an internal fault (then: close, no reply)."""
        if isinstance(self._stores, PgPolicyStores):
            return self._evaluate_postgresql(self._stores, request)
        try:
            # No snapshot for the policy (StoreHolder without snapshot=True): always a PolicyStore.
            return policy.evaluate(cast(policy.PolicyStore, self._stores.get()), request, self.settings, self.options)
        except Exception:  # noqa: BLE001 - never a decision from a broken state
            self._stores.close()
            self._faults.exception("policy request failed; closing so Postfix applies its default action")
            return None

    def _evaluate_postgresql(self, stores: PgPolicyStores, request: Mapping[str, str]
                             ) -> policy.Decision | policy.Callout | None:
        """As ``evaluate``, in a worker thread; an unreachable database is not a fault."""
        try:
            store = stores.get()
        except DatabaseNotReady as exc:
            return self._unreachable(str(exc))
        broken = True
        try:
            decision = policy.evaluate(store, request, self.settings, self.options)
            broken = False
        except DatabaseNotReady as exc:
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
        if self.target.url:
            record_on_postgresql(self.target, entry, self.deadline)
            return
        conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=self.deadline)
        try:
            conn.execute("PRAGMA journal_mode")  # fails fast on a file that is not a database
            policy.record_callout(conn, entry)
        finally:
            conn.close()

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

