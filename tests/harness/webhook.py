"""A webhook receiver on loopback for notification tests: a real aiohttp server on 127.0.0.1
(a free port) that records every POST — headers and the exact body — and answers with the
status the test sets (``answers``: a list taken one per request, then 200).

    async with WebhookReceiver() as hook:
        hook.url                      # http://127.0.0.1:PORT/hook
        hook.answers = [500]          # the next request fails, the ones after succeed
        await hook.wait_for(1)        # [Posted(headers, body, json)]
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Posted:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Posted] = []
        self.answers: list[int] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._arrived = asyncio.Event()

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(Posted(dict(request.headers), await request.read()))
        self._arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status < 300 else "receiver says no")

    async def __aenter__(self) -> "WebhookReceiver":
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Posted]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.received)
