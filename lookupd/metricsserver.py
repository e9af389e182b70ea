"""Metrics of a running lookupd, and a small HTTP server for ``[metrics] listen``.

``lookupd_families(daemon)`` turns the counters the services keep (LookupService.counts and
.latency, PolicyService.decisions) into Prometheus families at scrape time; Lookupd registers
it with mrod.operations.metrics when it starts. ``MetricsServer`` serves ``GET /metrics`` for deployments
without the admin panel (``mrod lookupd``), or beside it.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from mrod.infra import endpoints
from mrod.operations import metrics
from mrod.infra.config import Config

if TYPE_CHECKING:
    from mrod.lookupd.daemon import Lookupd

log = logging.getLogger("mrod.metrics")


def lookupd_families(daemon: "Lookupd") -> list[Metric]:
    service, policy = daemon.service, daemon.policy
    lookups = CounterMetricFamily("mrod_lookups", "lookups answered, by map and answer (OK, NOTFOUND, TEMP)",
                                  labels=["map", "answer"])
    temp = CounterMetricFamily("mrod_lookup_temp_answers", "TEMP answers (internal faults: Postfix defers)",
                               labels=["map"])
    temp_by_map: dict[str, int] = {}
    for (map_name, status), count in sorted(dict(service.counts).items()):
        lookups.add_metric([map_name, status], count)
        if status == "TEMP":
            temp_by_map[map_name] = temp_by_map.get(map_name, 0) + count
    for map_name, count in sorted(temp_by_map.items()):
        temp.add_metric([map_name], count)
    latency = metrics.histogram(service.latency, "mrod_lookup_duration_seconds", "time to answer a lookup", "map")
    decisions = CounterMetricFamily("mrod_policy_decisions", "policy service decisions, by reason "
                                    "(dunno, paused, quota, listed, verified, rejected, unverified-accept, ...)",
                                    labels=["decision"])
    for reason, count in sorted(dict(policy.decisions).items()):
        decisions.add_metric([reason], count)
    connections = GaugeMetricFamily("mrod_lookupd_connections", "open client connections (all listeners)")
    connections.add_metric([], len(daemon.connections))
    found = [lookups, temp, latency, decisions, connections]
    staleness = service.staleness()
    if staleness is not None:   # PostgreSQL only: SQLite's snapshot is never behind
        age = GaugeMetricFamily("mrod_lookupd_snapshot_staleness_seconds",
                                "seconds since lookupd's routing snapshot last synced with PostgreSQL")
        age.add_metric([], staleness)
        found.append(age)
    return found


class LookupdMetricsSocket:
    """`mrod serve`'s lookupd process: its in-memory families (lookups, latency, policy,
    connections) on a private unix socket, for the panel process's /metrics (one scrape shows both processes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", handle_memory_metrics)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.UnixSite(self.runner, self.path).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def handle_memory_metrics(request: web.Request) -> web.Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(metrics.memory_families()))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def remote_source(path: str, timeout: float = 1.0) -> "metrics.Source":
    """A metrics source (for mrod.operations.metrics.register) reading a LookupdMetricsSocket:
    the panel's /metrics shows lookupd's counters although lookupd runs in another process."""

    def read() -> list[Metric]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: lookupd\r\n\r\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
            raise ConnectionError(f"lookupd metrics: {head[:40]!r}")
        return list(text_string_to_metric_families(body.decode()))

    return read


class MetricsServer:
    """``GET /metrics`` on [metrics] listen (a component of `mrod lookupd` / `mrod serve`)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.endpoint = endpoints.parse(cfg.metrics.listen)
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        metrics.use_database(self.cfg.database, self.cfg.node.name)   # this node's readings only
        app = web.Application()
        app.router.add_get("/metrics", handle_metrics)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        ep = self.endpoint
        site: web.BaseSite
        if ep.path is not None:
            site = web.UnixSite(self.runner, ep.path)
        else:
            site = web.TCPSite(self.runner, ep.host, ep.port)
        await site.start()
        server: Any = getattr(site, "_server", None)
        if ep.path is None and server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s/metrics", f"{ep.host_for_url()}:{self.port}" if ep.path is None else ep.path)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def handle_metrics(request: web.Request) -> web.Response:
    body = await metrics.render_async()
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})
