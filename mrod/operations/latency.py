"""The lookup latency histogram, on lookupd's hot path.

``Latency.observe`` is a bisect and two list updates: prometheus_client's Histogram takes a lock
per observation, which costs more than the lookup it measures. Nothing here knows Prometheus;
mrod.operations.metrics.histogram turns the counts into a metric family at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left

# Seconds; lookups are tens of microseconds when all is well, up to lookup_deadline when not.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
           2.5, 5.0, 10.0)


class Latency:
    """Histograms by label, cheap to observe (one thread: the event loop)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, label: str, seconds: float) -> None:
        counts = self._counts.get(label)
        if counts is None:
            counts = self._counts[label] = [0] * (len(self.buckets) + 1)
            self._sums[label] = 0.0
        counts[bisect_left(self.buckets, seconds)] += 1
        self._sums[label] += seconds

    def readings(self) -> list[tuple[str, list[int], float]]:
        """(label, count per bucket — the last one past the largest bound —, sum of seconds) by label."""
        return [(label, list(counts), self._sums[label]) for label, counts in sorted(self._counts.items())]
