"""Fixtures for the MTA-STS tests: a test CA (tests/harness/testca.py) and an HTTPS policy
host on loopback (aiohttp with ssl, in its own thread) that serves, per Host header, whatever
the test put in ``policies``: ``{"mta-sts.example.test": (status, body)}``; and a UDP
``Forwarder`` from port 53 of a loopback address of its own to a test named, for a chrooted
Postfix whose ``<queue_directory>/etc/resolv.conf`` names that address (resolv.conf has no
port; named listens only on addresses configured on an interface, while Linux lets a plain
socket bind any 127/8 address)."""

from __future__ import annotations

import asyncio
import random
import socket
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


def free_loopback_53() -> str:
    """A loopback address whose port 53 (UDP and TCP) is free, for a named the chroot's
    resolv.conf can name."""
    for _ in range(20):
        address = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((address, 53))
        except OSError:
            continue
        return address
    raise AssertionError("no free loopback address for port 53")


class Forwarder:
    """UDP on ``address``:53 -> named on 127.0.0.1:``port``, one query at a time."""

    def __init__(self, address: str, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(2)
            while not self.stopping.is_set():
                try:
                    query, client = self.sock.recvfrom(4096)
                    upstream.sendto(query, ("127.0.0.1", self.port))
                    self.sock.sendto(upstream.recvfrom(65535)[0], client)
                except OSError:      # a timeout: look at the stop flag again
                    continue

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


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


