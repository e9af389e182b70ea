"""Prometheus figures of the MTA-STS cache (for mrod.operations.metrics, on a synchronous
connection): how many destination domains publish each mode, how many have DANE, and how many
could not be looked up at their last refresh (their cached policy stands until max_age)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from mrod.infra.dbapi import SyncConnection
from mrod.infra.enums import STS_MODES


def families(conn: SyncConnection) -> list[Metric]:
    modes = GaugeMetricFamily("mrod_mta_sts_policies", "domains whose cached MTA-STS policy has this mode",
                              labels=["mode"])
    found = dict(conn.execute("SELECT mode, count(*) FROM mta_sts WHERE mode IS NOT NULL GROUP BY mode").fetchall())
    for mode in STS_MODES:
        modes.add_metric([mode], found.get(mode, 0))
    dane, failing = conn.execute("SELECT coalesce(sum(dane), 0), coalesce(sum(CASE WHEN error IS NULL THEN 0"
                                 " ELSE 1 END), 0) FROM mta_sts").fetchone()
    return [modes,
            GaugeMetricFamily("mrod_mta_sts_dane", "domains whose MX hosts all have DNSSEC-validated TLSA records",
                              value=int(dane)),
            GaugeMetricFamily("mrod_mta_sts_failing", "domains whose last MTA-STS/DANE lookup failed",
                              value=int(failing))]
