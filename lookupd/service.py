"""The lookup service: one (map, key) -> Answer over mrod.answers.routing, for every listener.

Answers come from the in-memory routing snapshot (lookupd/storeholder.py), checked per lookup
for freshness (a commit by anyone is answered by the next lookup); until the snapshot is
loaded, and for recipients of ``listed`` domains, from a read-only SQLite connection on the
event loop that never waits for a lock. If the database is busy (locked by another process),
the lookup moves to a worker thread that may wait up to ``lookup_deadline`` and then answers TEMP.

Any fault — missing, locked, corrupt or replaced database, a bug — answers TEMP, never
NOTFOUND: NOTFOUND makes Postfix reject mail for good, TEMP makes it retry.

Metrics, kept cheap on the hot path: ``counts`` is exact (one dict increment per lookup);
the latency histogram observes a sample — one lookup in every ``LATENCY_SAMPLE`` per service,
plus every lookup that had to wait for the database — so its _count is the number of sampled
lookups, not of lookups (mrod_lookups_total is that), and its buckets and _sum describe the
sample: an unbiased picture of the distribution, without two clock reads and a bisect on
every lookup.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from mrod.infra import db, enums
from mrod.answers import routing
from mrod.operations.latency import Latency
from mrod.infra.errors import DatabaseNotReady
from mrod.answers.routing import NOTFOUND, TEMP, Answer
from mrod.answers.precomputed import Quick
from mrod.answers.snapshot import RouteSnapshot

from mrod.lookupd.ratelog import RateLimitedLog
from mrod.infra.engine import Target
from mrod.lookupd.stores import RouteStores, route_stores

log = logging.getLogger("mrod.lookupd")

LATENCY_SAMPLE = 8   # time one lookup in this many (a power of two)
_STATUSES = (routing.OK, NOTFOUND, TEMP)


class LookupService:
    def __init__(self, database: Path | str | Target, options: routing.Options, deadline: float = 5.0,
                 snapshot_file: Path | None = None, status_file: Path | None = None, node: str = "") -> None:
        self.options = options
        self.deadline = deadline
        # A shared database: the snapshot that follows it, kept on disk at snapshot_file, its
        # sync status (how stale it is, as node ``node``) written to status_file.
        self._stores = route_stores(Target.of(database), snapshot_file, status_file, node)
        self._faults = RateLimitedLog(log)
        # map label -> answer status -> count. Map names from clients are not trusted as
        # labels: unknown ones count as "other" (bounded memory).
        self._tally: dict[str, dict[str, int]] = {m: dict.fromkeys(_STATUSES, 0) for m in (*enums.MAPS, "other")}
        self._other = self._tally["other"]
        self._tick = 0
        self.latency = Latency()
        # per reply encoder (socketmap, tcp_table): the precomputed replies of the snapshot in use
        self._quick: dict[Callable[[str, str], bytes], Quick[bytes]] = {}

    @property
    def stores(self) -> RouteStores:
        """Where the answers come from (the policy service decides from its snapshot too)."""
        return self._stores

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """(map, status) -> lookups answered (for the metrics endpoint)."""
        return Counter({(m, st): n for m, by in self._tally.items() for st, n in by.items() if n})

    def close(self) -> None:
        """Close the database (and drop the snapshot); the next lookup opens it again."""
        self._quick.clear()
        self._stores.close()

    def shutdown(self) -> None:
        self._stores.shutdown()

    async def settle(self, timeout: float) -> None:
        """Wait (bounded) until the first lookups can be answered (a shared database: the first
        snapshot from it), so they are not TEMP for want of one."""
        await self._stores.settle(timeout)

    def staleness(self) -> float | None:
        """Seconds since the answers last synced with a shared database; None when they are
        always current (read from the file) or before a first sync."""
        return self._stores.staleness()

    @property
    def snapshot_domains(self) -> int | None:
        """How many domains the in-memory snapshot holds; None while lookups are answered from
        the database (loading, reloading, or a database without the change journal)."""
        snap = self._stores.snapshot
        return None if snap is None else len(snap)

    # -- answering ------------------------------------------------------------------------

    def answer_now(self, map_name: str, key: bytes) -> Answer | None:
        """The answer, or None when the database is busy and the caller should await
        ``answer_waiting`` instead."""
        tick = self._tick
        self._tick = tick + 1
        if tick & (LATENCY_SAMPLE - 1):
            result = self._answer_now(map_name, key)
        else:
            started = time.perf_counter()
            result = self._answer_now(map_name, key)
            if result is not None:
                self.latency.observe(_label(map_name), time.perf_counter() - started)
        if result is not None:
            self._tally.get(map_name, self._other)[result.status] += 1
        return result

    def reply_now(self, map_name: str, key: bytes, encode: Callable[[str, str], bytes]) -> bytes | None:
        """``encode(answer_now(...))``, from the snapshot's precomputed replies when it has
        one for the key (issue 23: one dict hit, a shared reply); None: await ``answer_waiting``.
        The common case is inlined here: every call level costs on this path."""
        tick = self._tick
        self._tick = tick + 1
        if tick & (LATENCY_SAMPLE - 1):
            try:
                store = self._stores.get()
                quick = self._quick.get(encode)
                if quick is not None and quick.snap is store:
                    found = quick.lookup(map_name, key.decode("utf-8"))
                    if found is not None:
                        self._tally.get(map_name, self._other)[found[0]] += 1
                        return found[1]
            except Exception:  # noqa: BLE001 - decided again by _reply_now, which handles every fault
                pass
            found = self._reply_now(map_name, key, encode)
        else:
            started = time.perf_counter()
            found = self._reply_now(map_name, key, encode)
            if found is not None:
                self.latency.observe(_label(map_name), time.perf_counter() - started)
        if found is None:
            return None
        self._tally.get(map_name, self._other)[found[0]] += 1
        return found[1]

    def _reply_now(self, map_name: str, key: bytes, encode: Callable[[str, str], bytes]) -> tuple[str, bytes] | None:
        try:
            store = self._stores.get()
            if type(store) is RouteSnapshot:
                quick = self._quick.get(encode)
                if quick is None or quick.snap is not store:
                    quick = self._quick[encode] = Quick(store, self.options, encode)
                found = quick.lookup(map_name, key.decode("utf-8"))
                if found is not None:
                    return found
            elif self._quick:
                # The snapshot was dropped (a reload): let go of it, or a 1M-domain snapshot
                # would stay in memory next to the one loading.
                self._quick.clear()
        except Exception:  # noqa: BLE001 - decided again below, where every fault is handled
            pass
        result = self._answer_now(map_name, key)
        return None if result is None else (result.status, encode(result.status, result.value))

    def _answer_now(self, map_name: str, key: bytes) -> Answer | None:
        try:
            text = key.decode("utf-8")
        except UnicodeDecodeError:
            # Postfix never sends a key that is not UTF-8; no stored name can match it.
            return Answer(NOTFOUND, why="key is not valid UTF-8")
        try:
            return routing.answer(self._stores.get(), map_name, text, self.options)
        except sqlite3.OperationalError as exc:
            if db.is_busy(exc):
                return None
            return self._fault(map_name, exc)
        except Exception as exc:  # noqa: BLE001 - any fault must become TEMP, never NOTFOUND
            return self._fault(map_name, exc)

    async def answer_waiting(self, map_name: str, key: bytes) -> Answer:
        """Answer from a worker thread that may wait for a lock, up to the deadline."""
        started = time.perf_counter()
        try:
            return await self._answer_waiting(map_name, key)
        finally:
            self.latency.observe(_label(map_name), time.perf_counter() - started)

    async def _answer_waiting(self, map_name: str, key: bytes) -> Answer:
        text = key.decode("utf-8")
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(self._answer_blocking, map_name, text), timeout=self.deadline)
        except TimeoutError:
            result = self._fault(map_name, TimeoutError(f"database busy for {self.deadline:g}s"))
        except Exception as exc:  # noqa: BLE001
            result = self._fault(map_name, exc)
        return self._count(map_name, result)

    async def answer(self, map_name: str, key: bytes) -> Answer:
        result = self.answer_now(map_name, key)
        return result if result is not None else await self.answer_waiting(map_name, key)

    def _answer_blocking(self, map_name: str, text: str) -> Answer:
        started = time.monotonic()
        with self._stores.waiting(self.deadline) as store:
            result = routing.answer(store, map_name, text, self.options)
        log.debug("lookup waited %.3fs for the database", time.monotonic() - started)
        return result

    def _count(self, map_name: str, result: Answer) -> Answer:
        self._tally.get(map_name, self._other)[result.status] += 1
        return result

    def _fault(self, map_name: str, exc: BaseException) -> Answer:
        self.close()  # reopen on the next lookup: the file may have been fixed or replaced
        if isinstance(exc, (*db.driver_errors(), DatabaseNotReady, TimeoutError, OSError)):
            reason = f"database unavailable: {exc}"
            self._faults.warning("lookup %s answered TEMP: %s", map_name, reason)
        else:
            reason = f"internal error: {type(exc).__name__}"
            self._faults.exception("lookup %s answered TEMP after an internal error", map_name)
        return Answer(TEMP, reason, reason)


def _label(map_name: str) -> str:
    return map_name if map_name in enums.MAPS else "other"
