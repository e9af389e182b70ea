"""The periodic BIND import inside ``mrod serve`` ([bind] enabled, every [bind] interval).

Each run opens its own database connection (the panel's and lookupd's are not shared) and
is recorded like any other; a failing run is logged and recorded, and the job carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mrod.infra import db
from mrod.entities.audit import Actor
from mrod.operations.periodic import PeriodicJob

if TYPE_CHECKING:
    from mrod.infra.config import Config
    from mrod.bindimport import Result

# First run shortly after start-up, not at once: let lookupd and the panel come up first.
FIRST_DELAY = 10.0


class BindImportJob:
    """A ``mrod serve`` component: ``start()`` / ``stop()``."""

    def __init__(self, cfg: "Config", first_delay: float = FIRST_DELAY) -> None:
        self.cfg = cfg
        self.actor = Actor(name="bind-import", origin="bind", remote="serve")
        self.last: "Result | None" = None
        self.job = PeriodicJob("bind-import", cfg.bind.interval, self.run_once, first_delay=first_delay)

    async def run_once(self) -> None:
        from mrod.bindimport import run

        async with db.opened(self.cfg.database) as conn:
            self.last = await run(conn, self.cfg, self.actor)

    async def start(self) -> None:
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()

