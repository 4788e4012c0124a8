"""The collector's own metrics, in an injected registry.

Floor metrics are rendered by the store from cached per-branch text; these
few are ordinary prometheus_client metrics, appended after them. Names, help
and labels come from the metric catalog (:mod:`branchwatch.contract.metrics`).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from branchwatch.contract import metrics
from branchwatch.contract.metrics import MetricFamily
from collector.httpserver import REFUSAL_REASONS
from collector.notices.state import IGNORED_ACK_REASONS

LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _check(family: MetricFamily, kind: str) -> None:
    if family.scope != "collector" or family.type != kind:
        raise ValueError(f"{family.name} is not a collector {kind} of the metric catalog")


def counter(family: MetricFamily, registry: CollectorRegistry) -> Counter:
    """The catalog's collector counter ``family``, registered in ``registry``."""
    _check(family, "counter")
    return Counter(family.name, family.help, family.labels, registry=registry)


def gauge(family: MetricFamily, registry: CollectorRegistry) -> Gauge:
    _check(family, "gauge")
    return Gauge(family.name, family.help, family.labels, registry=registry)


class _CountsBy(Collector):
    """A collector counter family whose counts, by label value, are kept elsewhere.

    For counts the store keeps under its own lock: read at scrape time, every value of
    ``values`` exported (0 when the source has none).
    """

    def __init__(self, family: MetricFamily, values: tuple[str, ...]) -> None:
        _check(family, "counter")
        (self.label,) = family.labels
        self.family = family
        self.values = values
        self.source: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = self.source()
        out = CounterMetricFamily(self.family.name, self.family.help, labels=[self.label])
        for value in self.values:
            out.add_metric([value], counts.get(value, 0))
        yield out


class LagHistogram(Collector):
    """The ingest lag histogram, fed a message's lags at once.

    prometheus_client's Histogram takes a lock and walks its buckets for every
    value: for an array of 500 events that was ~15 % of the time spent applying
    them (docs/benchmarks.md). Here one message's lags are bucketed (a bisect
    each) and added under one lock; the text is the same.
    """

    def __init__(self, family: MetricFamily, buckets: tuple[float, ...]) -> None:
        _check(family, "histogram")
        self.family = family
        self.bounds = buckets  # upper bounds, increasing; +Inf follows
        self._counts = [0] * (len(buckets) + 1)  # per bucket, not cumulative
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def observe_many(self, values: Sequence[float]) -> None:
        bounds = self.bounds
        found = [bisect_left(bounds, value) for value in values]  # value <= bound: "le"
        total = sum(values)
        with self._lock:
            counts = self._counts
            for index in found:
                counts[index] += 1
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
        yield HistogramMetricFamily(self.family.name, self.family.help, buckets, total)


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.messages = counter(metrics.COLLECTOR_MESSAGES, self.registry)
        self.rejected = counter(metrics.COLLECTOR_REJECTED, self.registry)
        self.missing = counter(metrics.COLLECTOR_EVENTS_MISSING, self.registry)
        self.connected = gauge(metrics.COLLECTOR_MQTT_CONNECTED, self.registry)
        self.lag = LagHistogram(metrics.COLLECTOR_INGEST_LAG, LAG_BUCKETS)
        self.registry.register(self.lag)
        self.notices_unpublished = counter(metrics.COLLECTOR_NOTICES_UNPUBLISHED, self.registry)
        self.snapshot_failures = counter(metrics.COLLECTOR_SNAPSHOT_FAILURES, self.registry)
        self.snapshot_success = gauge(metrics.COLLECTOR_SNAPSHOT_LAST_SUCCESS, self.registry)
        self.http_refused = counter(metrics.COLLECTOR_HTTP_REFUSED, self.registry)
        for reason in REFUSAL_REASONS:
            self.http_refused.labels(reason)
        self.http_connections = gauge(metrics.COLLECTOR_HTTP_CONNECTIONS, self.registry)
        self._acks_ignored = _CountsBy(metrics.COLLECTOR_NOTICE_ACKS_IGNORED, IGNORED_ACK_REASONS)
        self.registry.register(self._acks_ignored)
        # Pre-create the result children so every series exists from the start.
        self.accepted = self.messages.labels("accepted")
        self.duplicate = self.messages.labels("duplicate")
        self.rejected_messages = self.messages.labels("rejected")

    def count_acks_ignored(self, source: Callable[[], Mapping[str, int]]) -> None:
        """Export the ignored intercom acks from ``source`` (reason -> count so far)."""
        self._acks_ignored.source = source

    def render(self) -> bytes:
        return generate_latest(self.registry)
