"""Fixtures for every test: a private config and database per test, nothing shared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

import pytest

from mrod.infra import config as configmod
from mrod.infra import db
from mrod.entities.audit import Actor
from tests.data import ACTOR

# Real-component fixtures live in tests/harness/ and are registered here.
pytest_plugins: list[str] = [
    "tests.harness.diagnostics",
    "tests.harness.smtpsink",
    "tests.harness.mrodproc",
    "tests.harness.postfix",
    "tests.harness.named",
    "tests.harness.browser",
]


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> configmod.Config:
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "mrod.db")},
        "lookupd": {"socketmap": "127.0.0.1:0", "policy": ""},
        "admin": {"listen": "127.0.0.1:0"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return configmod.from_dict(data, base_dir=tmp_path)


@pytest.fixture
def cfg_factory(tmp_path: Path) -> Callable[..., configmod.Config]:
    return lambda **sections: make_config(tmp_path, **sections)


@pytest.fixture
def cfg(tmp_path: Path) -> configmod.Config:
    config = make_config(tmp_path)
    asyncio.run(_init(config.database.path))
    return config


async def _init(path: Path) -> None:
    async with db.opened(path, create=True):
        pass


@pytest.fixture
async def conn(cfg: configmod.Config):
    connection = await db.connect(cfg.database.path)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def actor() -> Actor:
    return ACTOR
