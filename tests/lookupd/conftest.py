"""An in-process lookupd on 127.0.0.1:0 over a seeded database, and small wire clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from mrod.lookupd import socketmap
from mrod.lookupd.daemon import Lookupd
from tests.conftest import make_config
from tests.data import seed_file
from tests.harness.primary import KnownRecipients, Primary

DATA = dict(
    relays=[dict(name="primary", host="mx1.example.net", tls="encrypt")],
    domains=[dict(name="example.com", relay="primary", include_subdomains=True),
             dict(name="listed.example", relay="primary", recipients="listed")],
    recipients=["joe@listed.example"],
)


@pytest.fixture
async def lookupd_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Lookupd]]]:
    """start(**[lookupd] settings): a Lookupd on 127.0.0.1:0 over the seeded database; every
    one started is stopped at teardown, in the test's loop."""
    started: list[Lookupd] = []

    async def start(**lookupd: Any) -> Lookupd:
        settings = {"socketmap": "127.0.0.1:0", "policy": "",
                    "tcp_table": {"relay_domains": "127.0.0.1:0", "transport": "127.0.0.1:0"}}
        settings.update(lookupd)
        cfg = make_config(tmp_path, lookupd=settings)
        if not cfg.database.path.exists():
            await seed_file(cfg.database.path, **DATA)
        daemon = Lookupd(cfg)
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    assert all(d.listeners for d in started)
    for daemon in reversed(started):
        await daemon.stop()


@pytest.fixture
async def connect(lookupd_factory: Any) -> AsyncIterator[Callable[[int], Awaitable["SocketmapClient"]]]:
    """connect(port): a SocketmapClient, closed at teardown whatever the test did (before the
    daemons stop: this fixture depends on lookupd_factory)."""
    clients: list[SocketmapClient] = []

    async def make(port: int) -> SocketmapClient:
        client = await SocketmapClient.connect(port)
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.close()


class SocketmapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> "SocketmapClient":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

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


@pytest.fixture
def primary() -> Iterator[tuple[Primary, KnownRecipients]]:
    """A primary on loopback that knows one recipient (the policy tests' callouts)."""
    handler = KnownRecipients({"joe@verify.example"})
    server = Primary(handler)
    server.start()
    yield server, handler
    server.stop()
