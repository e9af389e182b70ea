"""Fixtures for the MTA-STS tests: a test CA (tests/harness/testca.py) and an HTTPS policy
host on loopback (aiohttp with ssl, in its own thread) that serves, per Host header, whatever
the test put in ``policies``: ``{"mta-sts.example.test": (status, body)}``."""

from __future__ import annotations

import asyncio
import threading
from typing import Iterator

import pytest
from aiohttp import web

from tests.harness import free_port
from tests.harness.testca import Leaf, TestCA


class PolicyHost:
    def __init__(self, ca: TestCA, leaf: Leaf) -> None:
        self.port = free_port()
        self.policies: dict[str, tuple[int, str]] = {}
        self.requests: list[str] = []
        self._context = ca.server_context(leaf)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        host = request.host.rsplit(":", 1)[0]
        self.requests.append(f"{host}{request.path}")
        status, body = self.policies.get(host, (404, "not here"))
        if request.path != "/.well-known/mta-sts.txt":
            status, body = 404, "not here"
        if status in (301, 302):
            return web.Response(status=status, headers={"Location": body})
        return web.Response(status=status, text=body, content_type="text/plain")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._context)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "PolicyHost":
        self._thread.start()
        assert self._ready.wait(10), "the policy host did not start"
        return self

    def stop(self) -> None:
        async def down() -> None:
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


def policy_text(mode: str, *mx: str, max_age: int = 86400) -> str:
    return "version: STSv1\r\nmode: " + mode + "\r\n" + "".join(f"mx: {m}\r\n" for m in mx) + f"max_age: {max_age}\r\n"


@pytest.fixture(scope="module")
def policy_host(test_ca: TestCA, request: pytest.FixtureRequest) -> Iterator[PolicyHost]:
    """The module's HTTPS policy host; its certificate covers mta-sts.<d> for the module's
    ``POLICY_DOMAINS``."""
    names = [f"mta-sts.{d}" for d in request.module.POLICY_DOMAINS]
    host = PolicyHost(test_ca, test_ca.issue("policy-host", names)).start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def fresh_policies(policy_host: PolicyHost) -> Iterator[PolicyHost]:
    """The policy host with no policies, and none left behind for the next test."""
    policy_host.policies.clear()
    yield policy_host
    policy_host.policies.clear()


