"""The recipient-source job under ``mrod serve``: every ``[recipient_sources] interval``, sync
each source (a failing one is logged by the sync itself, once per run, and shows in the panel)."""

from __future__ import annotations

from mrod.infra import db
from mrod.infra.config import Config
from mrod.recipientsources import sync


async def sync_all(cfg: Config) -> list[sync.Outcome]:
    async with db.opened(cfg.database) as conn:
        return await sync.run_all(cfg, conn)
