"""The lookupd process: one LookupService, the configured listeners, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
from functools import partial
from typing import Iterator

from mrod.operations import metrics, syncstatus
from mrod.answers import routing, snapshotfile
from mrod.infra.config import Config
from mrod.infra.engine import Target

from mrod.lookupd.metricsserver import lookupd_families
from mrod.lookupd.policyservice import PolicyService, Verifier, default_verifier
from mrod.lookupd.servers import (
    Limits,
    Listener,
    PolicyConnection,
    RequestConnection,
    SocketmapConnection,
    TcpTableConnection,
)
from mrod.lookupd.service import LookupService
from mrod.lookupd import sockets as handover

log = logging.getLogger("mrod.lookupd")

FIRST_LOAD_WAIT = 10.0   # seconds lookupd's start waits for a first snapshot from PostgreSQL


class Lookupd:
    def __init__(self, config: Config, verifier: Verifier | None = None,  # tests pass their own
                 sockets: list[tuple[str, socket.socket]] | None = None) -> None:
        lk = config.lookupd
        self.config = config
        # Listening sockets handed over by systemd or `mrod serve` (lookupd/sockets.py).
        self.handed = list(sockets or [])
        options = routing.Options.from_config(config)
        database = Target.of(config.database)
        # PostgreSQL: the routing snapshot is also kept on local disk, in this node's state
        # directory ([node] state_dir), for a restart while the database is gone; and its sync
        # status, for `mrod health` and the panel (mrod.operations.syncstatus).
        self.service = LookupService(database, options, lk.lookup_deadline,
                                     snapshot_file=snapshotfile.file_for(config),
                                     status_file=syncstatus.path_for(config), node=config.node.name)
        self.policy = PolicyService(database, config.policy, options,
                                    verifier or default_verifier(config.policy), lk.lookup_deadline,
                                    routes=self.service.stores, health_interval=config.health.interval)
        self.limits = Limits(lk.idle_timeout, lk.request_timeout, lk.max_connections)
        self.connections: set[RequestConnection] = set()
        self.listeners: list[Listener] = []
        self._metrics = partial(lookupd_families, self)
        if lk.socketmap:
            self.listeners.append(Listener(
                "socketmap", lk.socketmap, partial(SocketmapConnection, service=self.service),
                self.limits, self.connections))
        if lk.policy:
            self.listeners.append(Listener(
                "policy", lk.policy, partial(PolicyConnection, service=self.policy),
                self.limits, self.connections))
        for map_name, endpoint in sorted(lk.tcp_table.items()):
            self.listeners.append(Listener(
                f"tcp_table {map_name}", endpoint,
                partial(TcpTableConnection, service=self.service, map_name=map_name),
                self.limits, self.connections))

    def listener(self, name: str) -> Listener:
        for item in self.listeners:
            if item.name == name:
                return item
        raise KeyError(name)

    async def start(self) -> None:
        raise_fd_limit(self.limits.max_connections + 64)
        # PostgreSQL: a first snapshot (from disk, or loaded) before serving, bounded — meanwhile
        # Postfix's connections wait in the backlog of handed-over sockets instead of getting TEMP.
        await self.service.settle(FIRST_LOAD_WAIT)
        if any(item.name == "policy" for item in self.listeners):
            self.policy.start()
        started = []
        try:
            for item in self.listeners:
                await item.start(handover.pick(item.name, item.endpoint, self.handed))
                started.append(item)
            for name, sock in self.handed:
                log.warning("a listening socket was handed over that no listener uses (%s %s): closed",
                            name or "unnamed", sock.getsockname())
                sock.close()
            self.handed = []
        except OSError:
            for item in started:
                await item.stop()
            raise
        metrics.register("lookupd", self._metrics)
        # Open the database early so a problem shows at start (lookups still answer TEMP).
        first = self.service.answer_now("relay_domains", b"mrod-startup-check.invalid")
        if first is not None and first.status == routing.TEMP:
            log.warning("the database is not usable yet; lookups answer TEMP until it is: %s", first.value)

    async def stop(self, grace: float = 2.0) -> None:
        metrics.unregister("lookupd", self._metrics)
        for item in self.listeners:
            if item.server is not None:
                item.server.close()
        # Idle connections close now; one with a request in hand closes once its reply is out.
        for conn in list(self.connections):
            conn.drain()
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 - bounded drain at stop
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for item in self.listeners:
            await item.stop()
        self.service.shutdown()
        self.policy.shutdown()


def raise_fd_limit(wanted: int) -> None:
    """Many Postfix processes each hold a connection: lift the soft file limit if it is low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit to %d: %s", target, exc)


@contextlib.contextmanager
def stop_signals() -> Iterator[asyncio.Event]:
    """An event that SIGTERM or SIGINT sets, from the moment this is entered. Entered before
    anything starts, so that a signal arriving while a process is still starting (`mrod serve`
    stopped at once, a slow start under load) is kept for the stop that follows: Python's default
    action would end the process there without stopping what had started."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def wait_for_signal() -> None:
    """Until SIGTERM or SIGINT."""
    with stop_signals() as stop:
        await stop.wait()
