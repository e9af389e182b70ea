"""Prometheus metrics: lookups by map and answer, lookup latency, TEMP answers, policy
decisions (from the running lookupd), and from the database — relays up, the queue per
domain, DNS check results, BIND import runs.

Nothing here is on the lookup hot path: lookupd counts latencies in mrod.operations.latency
(no Prometheus there), and ``histogram`` turns them into a metric family at scrape time, when
everything else is read too:

* in-memory sources (``register(name, fn)``: fn() -> metric families) are read on the
  caller's thread — the event loop, where their counters are written;
* database figures are read on a read-only SQLite connection; ``render_async`` runs that
  part in a worker thread so a slow disk never stalls the event loop.

The panel serves ``await render_async()`` at /metrics; ``[metrics] listen`` serves the same
from ``mrod lookupd`` / ``mrod serve`` (lookupd/metricsserver.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from mrod.infra.dbapi import SyncConnection
from mrod.infra import db
from mrod.infra.enums import CHECK_STATUSES, HEALTH_STATES, RUN_STATUSES
from mrod.infra.engine import Target
from mrod.infra.errors import DatabaseNotReady
from mrod.operations.latency import Latency
from mrod.mtasts.metrics import families as mta_sts_families

__all__ = ["CONTENT_TYPE_LATEST", "histogram", "register", "unregister", "render_async"]

Source = Callable[[], Iterable[Metric]]
_sources: dict[str, Source] = {}
_database: Target | None = None
_node: str | None = None


def histogram(latency: Latency, name: str, documentation: str, label: str) -> HistogramMetricFamily:
    """A Latency's counts as a cumulative Prometheus histogram, one series per label value."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, counts, total in latency.readings():
        cumulative, running = [], 0
        for bound, count in zip((*map(_le, latency.buckets), "+Inf"), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        family.add_metric([value], cumulative, total)
    return family


def _le(bound: float) -> str:
    return repr(bound)


def register(name: str, source: Source) -> None:
    """Add (or replace) an in-memory source of metric families."""
    _sources[name] = source


def unregister(name: str, source: Source | None = None) -> None:
    """Remove a source (only if it is still ``source``, when given)."""
    if source is None or _sources.get(name) is source:
        _sources.pop(name, None)


def use_database(where: db.Where | None, node: str | None = None) -> None:
    """Where the database figures come from (None: none): a [database] config, path or URL; with
    ``node`` ([node] name), only that node's health, queue and DNS-check readings (a
    scrape of node A describes node A). None: every row, as with a single node."""
    global _database, _node
    _database = None if where is None else Target.of(where)
    _node = node


class _Static:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _encode(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(families))
    return generate_latest(registry)


def memory_families() -> list[Metric]:
    families: list[Metric] = []
    for name, source in list(_sources.items()):
        try:
            families.extend(source())
        except Exception as exc:  # noqa: BLE001 - one broken source must not hide the others
            families.append(_scrape_error(name, exc))
    return families


async def render_async() -> bytes:
    families = memory_families()
    families += await asyncio.to_thread(database_families, _database, _node)
    return _encode(families)


def _scrape_error(source: str, exc: BaseException) -> Metric:
    family = GaugeMetricFamily("mrod_metrics_source_error", "1 when a metrics source failed at this scrape",
                               labels=["source", "error"])
    family.add_metric([source, type(exc).__name__], 1)
    return family


# -- from the database --------------------------------------------------------------------------------


def database_families(where: db.Where | None, node: str | None = None) -> list[Metric]:
    if where is None:
        return []
    faults: tuple[type[Exception], ...] = (DatabaseNotReady, *db.driver_errors())
    try:
        conn = db.open_sync(where, 2.0)
    except faults as exc:
        return [_scrape_error("database", exc)]
    try:
        return (_relays(conn, node) + _queue(conn, node) + _checks(conn, node) + _imports(conn)
                + _recipient_sources(conn) + _refusals(conn, node) + mta_sts_families(conn))
    except faults as exc:
        return [_scrape_error("database", exc)]
    finally:
        conn.close()


def _relays(conn: SyncConnection, node: str | None) -> list[Metric]:
    up = GaugeMetricFamily("mrod_relay_up", "1 when the relay (a primary) is up, 0 when down or not yet known",
                           labels=["relay"])
    latency = GaugeMetricFamily("mrod_relay_probe_latency_seconds", "latency of the last successful probe",
                                labels=["relay"])
    states = dict.fromkeys(HEALTH_STATES, 0)
    for name, state, ms in conn.execute(
            "SELECT r.name, coalesce(h.state, 'unknown'), h.last_latency_ms FROM relay r"
            " LEFT JOIN relay_health h ON h.relay_id = r.id" + (" AND h.node = ?" if node is not None else "")
            + " ORDER BY r.name", (node,) if node is not None else ()):
        up.add_metric([name], 1 if state == "up" else 0)
        if ms is not None:
            latency.add_metric([name], ms / 1000)
        states[state] = states.get(state, 0) + 1
    count = GaugeMetricFamily("mrod_relays", "relays by health state", labels=["state"])
    for state, n in sorted(states.items()):
        count.add_metric([state], n)
    return [up, count, latency]


def _queue(conn: SyncConnection, node: str | None) -> list[Metric]:
    labels = ["domain"]
    messages = GaugeMetricFamily("mrod_queue_messages", "messages queued for the domain (last queue reading)",
                                 labels=labels)
    size = GaugeMetricFamily("mrod_queue_bytes", "bytes queued for the domain", labels=labels)
    oldest = GaugeMetricFamily("mrod_queue_oldest_age_seconds", "age of the domain's oldest queued message",
                               labels=labels)
    now = time.time()
    for name, n, b, first in conn.execute(
            "SELECT d.name, q.messages, q.bytes, q.oldest FROM queue_stat q JOIN domain d ON d.id = q.domain_id"
            + (" WHERE q.node = ?" if node is not None else "") + " ORDER BY d.name",
            (node,) if node is not None else ()):
        messages.add_metric([name], n)
        size.add_metric([name], b)
        if first is not None:
            oldest.add_metric([name], max(0.0, now - first))
    return [messages, size, oldest]


def _checks(conn: SyncConnection, node: str | None) -> list[Metric]:
    family = GaugeMetricFamily("mrod_domain_checks", "domains by the status of their last DNS check",
                               labels=["status"])
    found = dict(conn.execute("SELECT status, count(*) FROM domain_check"
                              + (" WHERE node = ?" if node is not None else "") + " GROUP BY status",
                              (node,) if node is not None else ()).fetchall())
    for status in CHECK_STATUSES:
        family.add_metric([status], found.get(status, 0))
    return [family]


def _imports(conn: SyncConnection) -> list[Metric]:
    if not db.has_table(conn, "import_run"):
        return []
    runs = CounterMetricFamily("mrod_import_runs", "BIND import runs by outcome", labels=["status"])
    found = dict(conn.execute("SELECT status, count(*) FROM import_run GROUP BY status").fetchall())
    for status in RUN_STATUSES:
        runs.add_metric([status], found.get(status, 0))
    last = conn.execute("SELECT max(finished_at) FROM import_run WHERE status = 'ok'").fetchone()[0]
    families: list[Metric] = [runs]
    if last:
        stamp = GaugeMetricFamily("mrod_import_last_success_timestamp_seconds", "when the last BIND import succeeded")
        stamp.add_metric([], _epoch(last))
        families.append(stamp)
    return families


def _recipient_sources(conn: SyncConnection) -> list[Metric]:
    """Recipient sources (mrod.recipientsources): whether each fails, its last applied sync."""
    if not db.has_table(conn, "recipient_source"):
        return []
    labels = ["source"]
    failing = GaugeMetricFamily("mrod_recipient_source_failing",
                                "1 while the source fails or its last result is held for an operator", labels=labels)
    count = GaugeMetricFamily("mrod_recipient_source_addresses", "addresses listed by the last applied sync",
                              labels=labels)
    stamp = GaugeMetricFamily("mrod_recipient_source_last_success_timestamp_seconds",
                              "when the source's last good sync was applied", labels=labels)
    for name, error, ok_at, addresses in conn.execute(
            "SELECT name, error, ok_at, addresses FROM recipient_source ORDER BY name").fetchall():
        failing.add_metric([name], 0 if error is None else 1)
        if ok_at:
            stamp.add_metric([name], _epoch(ok_at))
            count.add_metric([name], addresses or 0)
    return [failing, count, stamp]
def _refusals(conn: SyncConnection, node: str | None) -> list[Metric]:
    """Mail the backup accepted that the primary then refused with 5xx (mrod.operations.deliveries)."""
    if not db.has_table(conn, "primary_refusal"):
        return []
    family = CounterMetricFamily("mrod_primary_refused", "messages this backup accepted that the domain's primary"
                                 " then refused with 5xx (from Postfix's log)", labels=["domain"])
    for name, refused in conn.execute(
            "SELECT d.name, sum(p.refused) FROM primary_refusal p JOIN domain d ON d.id = p.domain_id"
            + (" WHERE p.node = ?" if node is not None else "") + " GROUP BY d.name ORDER BY d.name",
            (node,) if node is not None else ()):
        family.add_metric([name], refused)
    return [family]


def _epoch(text: str) -> float:
    return db.parse_stamp(text).timestamp()
