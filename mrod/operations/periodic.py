"""Background jobs run inside ``mrod serve``: periodic work that must never stop the process.

A job is an async callable run every ``interval`` seconds (first run after ``first_delay``).
A failing run is logged and the job carries on at its next interval; stop() cancels it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Awaitable, Callable

log = logging.getLogger("mrod.jobs")


class PeriodicJob:
    def __init__(self, name: str, interval: float, run: Callable[[], Awaitable[object]],
                 first_delay: float = 0.0, jitter: float = 0.1) -> None:
        if interval <= 0:
            raise ValueError("interval must be greater than 0")
        self.name = name
        self.interval = interval
        self.run = run
        self.first_delay = first_delay
        self.jitter = jitter
        self.runs = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"job {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.run()
                self.runs += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # a job failure must not end mrod serve
                self.failures += 1
                log.exception("job %s failed; next run in %gs", self.name, self.interval)
            spread = self.interval * self.jitter
            await asyncio.sleep(self.interval + random.uniform(-spread, spread))
