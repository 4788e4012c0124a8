"""The ingest lag histogram, fed a message's lags at once, reads as prometheus_client's."""

from __future__ import annotations

import math
import random

import prometheus_client
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from branchwatch.contract import metrics
from collector.selfmetrics import LAG_BUCKETS, LagHistogram, SelfMetrics


def test_the_same_text_as_a_prometheus_client_histogram() -> None:
    rng = random.Random(3)
    # On the bounds, between them, past the last one, and zero (a clamped clock skew).
    values = [*LAG_BUCKETS, 0.0, 61.0, 1e6, *(rng.expovariate(2.0) for _ in range(500))]
    family = metrics.COLLECTOR_INGEST_LAG
    reference = CollectorRegistry()
    histogram = Histogram(family.name, family.help, registry=reference, buckets=LAG_BUCKETS)
    ours = CollectorRegistry()
    lag = LagHistogram(family, LAG_BUCKETS)
    ours.register(lag)
    for value in values:
        histogram.observe(value)
    lag.observe(values[0])
    for start in range(1, len(values), 37):  # messages of several events
        lag.observe_many(values[start : start + 37])
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        got, want = generate_latest(ours).decode(), generate_latest(reference).decode()
    finally:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]
    # Line for line; the sum only to rounding (added in another order).
    sum_line = f"{family.name}_sum "
    assert [x for x in got.splitlines() if not x.startswith(sum_line)] == [
        x for x in want.splitlines() if not x.startswith(sum_line)
    ]
    (ours_sum,) = (float(x.split()[1]) for x in got.splitlines() if x.startswith(sum_line))
    (want_sum,) = (float(x.split()[1]) for x in want.splitlines() if x.startswith(sum_line))
    assert math.isclose(ours_sum, want_sum, rel_tol=1e-12)


def test_rendered_by_the_self_metrics() -> None:
    selfmetrics = SelfMetrics()
    selfmetrics.lag.observe_many([0.001, 0.02, 100.0])
    text = selfmetrics.render().decode()
    name = metrics.COLLECTOR_INGEST_LAG.name
    assert f'{name}_bucket{{le="0.005"}} 1.0' in text
    assert f'{name}_bucket{{le="0.025"}} 2.0' in text
    assert f'{name}_bucket{{le="+Inf"}} 3.0' in text
    assert f"{name}_count 3.0" in text
    assert f"{name}_sum 100.021" in text
