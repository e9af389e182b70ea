"""An in-process lookupd on 127.0.0.1:0 over a seeded database, and small wire clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mrod.lookupd import socketmap
from mrod.lookupd.daemon import Lookupd
from mrod.infra import db
from mrod.entities import domains, recipients, relays
from mrod.entities.audit import Actor
from tests.conftest import make_config

ACTOR = Actor("tester", "cli", "local")


async def seed(path: Path) -> None:
    async with db.opened(path, create=True) as c:
        await relays.add(c, ACTOR, name="primary", host="mx1.example.net", tls="encrypt")
        await domains.add(c, ACTOR, "example.com", relay="primary", include_subdomains=True)
        await domains.add(c, ACTOR, "listed.example", relay="primary", recipients="listed")
        await recipients.add(c, ACTOR, "joe@listed.example")


@pytest.fixture
def lookupd_factory(tmp_path: Path):
    started: list[Lookupd] = []

    async def start(**lookupd: Any) -> Lookupd:
        settings = {"socketmap": "127.0.0.1:0", "policy": "",
                    "tcp_table": {"relay_domains": "127.0.0.1:0", "transport": "127.0.0.1:0"}}
        settings.update(lookupd)
        cfg = make_config(tmp_path, lookupd=settings)
        if not cfg.database.path.exists():
            await seed(cfg.database.path)
        daemon = Lookupd(cfg)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    # Teardown runs in the test's loop via the async fixture below.
    assert all(d.listeners for d in started)
    _pending.extend(started)


_pending: list[Lookupd] = []


_clients: list["SocketmapClient"] = []


@pytest.fixture(autouse=True)
async def _stop_daemons() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().close()
    while _pending:
        await _pending.pop().stop()


class SocketmapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> "SocketmapClient":
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        _clients.append(client)   # closed at teardown, whatever the test did
        return client

    async def reply(self) -> str:
        digits = await asyncio.wait_for(self.reader.readuntil(b":"), 5)
        payload = await self.reader.readexactly(int(digits[:-1]) + 1)
        assert payload.endswith(b",")
        return payload[:-1].decode()

    async def ask(self, map_name: str, key: str | bytes) -> str:
        raw = key.encode() if isinstance(key, str) else key
        self.writer.write(socketmap.encode(map_name.encode() + b" " + raw))
        return await self.reply()

    async def closed_by_server(self) -> bool:
        """True when the server closed the connection (EOF within 5 s)."""
        try:
            data = await asyncio.wait_for(self.reader.read(100), 5)
        except ConnectionResetError:
            return True
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


# Every lookupd test runs on the stdlib event loop and on uvloop (what `mrod lookupd` uses
# when it is installed, issue 10).
def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
