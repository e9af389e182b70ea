"""The policy service: one Postfix policy request -> one action, over mrod.policy.

Decisions read the database on the event loop (microseconds); a recipient callout to a
primary runs as a task of that connection, and its result is stored from a worker thread.
On any internal fault the service sends nothing and closes the connection (the policy
protocol's rule): Postfix then applies its default action, a 4xx — never a rejection.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Awaitable, Callable, Mapping, cast

from mrod.answers import policy, routing
from mrod.infra.config import PolicyConfig

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

    def close(self) -> None:
        self._stores.close()

    def shutdown(self) -> None:
        self._stores.shutdown()

    def evaluate(self, request: Mapping[str, str]) -> policy.Decision | policy.Callout | None:
        """A decision, a callout to run, or None on an internal fault (then: close, no reply)."""
        try:
            # No snapshot for the policy (StoreHolder without snapshot=True): always a PolicyStore.
            return policy.evaluate(cast(policy.PolicyStore, self._stores.get()), request, self.settings, self.options)
        except Exception:  # noqa: BLE001 - never a decision from a broken state
            self._stores.close()
            self._faults.exception("policy request failed; closing so Postfix applies its default action")
            return None

    async def run_callout(self, callout: policy.Callout) -> policy.Decision | None:
        try:
            result = await self.verifier(callout)
            if result is not None:
                entry = policy.cache_entry(callout, result, self.settings)
                await asyncio.wait_for(asyncio.to_thread(self._record, entry), self.deadline)
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

