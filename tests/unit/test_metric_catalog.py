"""The metric catalog and what the collector really exports: the same families, both ways."""

from __future__ import annotations

import re
from collections.abc import Callable

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from branchwatch.contract import metrics
from collector.app import disable_created_series
from collector.config import GrafanaConfig
from collector.grafana import Annotator
from collector.notices.config import NoticesConfig
from collector.selfmetrics import SelfMetrics, counter
from collector.store import Store
from tests.unit.test_exposition import CONFIG, LIMITS, scenario

HEADER = re.compile(r"# (HELP|TYPE) (\S+) (.*)")
SAMPLE = re.compile(r"(\w+)(?:\{(.*)\})? \S+")


def collector_exposition() -> str:
    """Every self-metric the collector can register, each with a child where it has labels.

    Rendered as the running collector renders them: without ``*_created`` series.
    """
    registry = CollectorRegistry(auto_describe=True)
    own = SelfMetrics(registry)
    own.rejected.labels("bad_json").inc()
    Annotator(GrafanaConfig(), registry, {}).posted.inc()
    disable_created_series()
    try:
        return own.render().decode()
    finally:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]


def floor_exposition() -> str:
    """A branch with every kind of state: a queue, tickets, counters, ratings, agents, faults,
    and a notice chain run to its end (post 2 empty since opening, nobody acknowledges)."""
    store = Store(CONFIG, thresholds=LIMITS, notices=NoticesConfig(follow_up_positions=(1,)))
    scenario(store)
    for now in (2000.0, 2100.0):  # the all-call, then its ack timeout: unanswered
        store.due_notices(now)
    text = store.render()
    assert f"{metrics.NOTICE_UNANSWERED.name}{{" in text
    return text


def families(text: str) -> dict[str, dict[str, str]]:
    """{family: {"HELP": ..., "TYPE": ...}} as the exposition declares them, in order."""
    declared: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        match = HEADER.fullmatch(line)
        if match:
            declared.setdefault(match[2], {})[match[1]] = match[3]
    return declared


def sample_labels(text: str) -> dict[str, set[tuple[str, ...]]]:
    """{sample name: every label-name tuple it was written with, in the order written}."""
    seen: dict[str, set[tuple[str, ...]]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.fullmatch(line)
        assert match, line
        names = tuple(re.findall(r'(\w+)="(?:[^"\\]|\\.)*"', match[2] or ""))
        seen.setdefault(match[1], set()).add(names)
    return seen


def test_the_exposition_declares_exactly_the_catalog() -> None:
    declared = {**families(floor_exposition()), **families(collector_exposition())}
    catalog = {f.name: {"HELP": f.help, "TYPE": f.type} for f in metrics.CATALOG}
    assert not declared.keys() - catalog.keys(), "rendered but missing from the catalog"
    assert not catalog.keys() - declared.keys(), "in the catalog but never rendered"
    assert declared == catalog
    assert list(families(floor_exposition())) == [f.name for f in metrics.FLOOR]


@pytest.mark.parametrize("exposition", [floor_exposition, collector_exposition])
def test_every_sample_carries_the_catalog_labels(exposition: Callable[[], str]) -> None:
    samples = sample_labels(exposition())
    for family in metrics.CATALOG:
        if family.type == "histogram":
            expected = {
                family.bucket: {(*family.all_labels, "le")},
                family.sum: {family.all_labels},
                family.count: {family.all_labels},
            }
        else:
            expected = {family.name: {family.all_labels}}
        for name, labels in expected.items():
            if name in samples:
                assert samples.pop(name) == labels, name
    assert not samples, f"samples of no catalog family: {sorted(samples)}"


def test_histogram_series_names() -> None:
    assert metrics.WAIT_SECONDS.bucket == "branchwatch_wait_seconds_bucket"
    assert metrics.WAIT_SECONDS.count == "branchwatch_wait_seconds_count"
    with pytest.raises(ValueError, match="is a gauge"):
        _ = metrics.QUEUE_WAITING.bucket


def test_self_metrics_refuse_a_family_of_another_kind_or_scope() -> None:
    registry = CollectorRegistry()
    with pytest.raises(ValueError, match="not a collector counter"):
        counter(metrics.TICKETS_ISSUED, registry)
    with pytest.raises(ValueError, match="not a collector counter"):
        counter(metrics.COLLECTOR_MQTT_CONNECTED, registry)


@pytest.mark.parametrize(
    ("bound", "label"),
    [(900, "900.0"), (0.5, "0.5"), (2700.0, "2700.0"), (1e6, "1e+06"), (12345678, "1.2345678e+07")],
)
def test_bucket_labels_are_written_as_prometheus_client_writes_them(
    bound: float, label: str
) -> None:
    assert metrics.bucket_label(bound) == label
