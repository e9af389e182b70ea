"""The idle timeout counts from the last reply: a connection that keeps asking stays open past
the timeout, and is closed once it has been quiet for it (lookupd re-arms one timer lazily
instead of replacing it on every request)."""

from __future__ import annotations

import asyncio



async def test_active_connection_outlives_the_idle_timeout(lookupd_factory, connect) -> None:
    d = await lookupd_factory(idle_timeout=0.3)
    c = await connect(d.listener("socketmap").port)
    # Four idle timeouts' worth of steady traffic, never quiet for more than half of one.
    for _ in range(12):
        assert await c.ask("relay_domains", "example.com") == "OK example.com"
        await asyncio.sleep(0.1)
    assert len(d.connections) == 1
    # Then quiet: closed by the server.
    assert await c.closed_by_server()
    assert len(d.connections) == 0


async def test_idle_clock_restarts_at_each_reply(lookupd_factory, connect) -> None:
    d = await lookupd_factory(idle_timeout=0.4)
    c = await connect(d.listener("socketmap").port)
    await asyncio.sleep(0.3)   # most of a timeout passes before the first request
    assert await c.ask("relay_domains", "example.org") == "NOTFOUND "
    await asyncio.sleep(0.25)  # past the first deadline, within the one the reply restarted
    assert await c.ask("relay_domains", "example.com") == "OK example.com"
    assert await c.closed_by_server()
