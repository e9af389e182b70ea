"""A background job in expected trouble says how soon it tries again, in seconds — its own
interval — once, and once when it works again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mrod.operations import servejobs
from tests.conftest import make_config


async def test_the_warning_says_the_seconds_until_the_next_try(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No database yet (DatabaseNotReady): the trouble an operator sees before `mrod init`.
    cfg = make_config(tmp_path, health={"interval": 45.0}, queue={"enabled": False}, checks={"enabled": False})
    job = {j.name: j for j in servejobs.jobs(cfg)}["health"]
    caplog.set_level(logging.INFO, logger="mrod.jobs")
    await job.run()
    await job.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("health: database ")
    assert warnings[0].endswith("(retrying every 45 s)")
