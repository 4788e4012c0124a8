"""Intercom acks that acknowledge no notice: counted per branch (API) and summed (metric).

The sum has no branch label: four reasons per branch would not fit the series budget,
and an operator finds the branch in the API's branch view.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest

from branchwatch.contract import encode, topic_for
from branchwatch.contract import events as ev
from collector.app import Collector
from collector.config import CollectorConfig, HttpConfig
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.notices.state import IGNORED_ACK_REASONS
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from tests.support import parse_metrics, sample

FAMILY = "branchwatch_collector_notice_acks_ignored_total"


def ack(seq: int, position: int, notice: str | None) -> ev.IntercomAck:
    return ev.IntercomAck(
        v=1, seq=seq, ts=1000.0 + seq, device="ic", position=position, notice=notice
    )


def exported(store: Store, metrics: SelfMetrics) -> dict[str, float | None]:
    """The summed counter as a scrape shows it: the floor rendered, then the self-metrics."""
    store.render()
    samples = parse_metrics(metrics.render().decode())
    return {reason: sample(samples, FAMILY, reason=reason) for reason in IGNORED_ACK_REASONS}


def counts(**found: float) -> dict[str, float | None]:
    return {reason: float(found.get(reason, 0)) for reason in IGNORED_ACK_REASONS}


def wired(store: Store) -> SelfMetrics:
    metrics = SelfMetrics()
    metrics.count_acks_ignored(lambda: store.exposition.acks_ignored)
    return metrics


def notices_store() -> Store:
    return Store(FloorConfig(), notices=NoticesConfig())


def test_every_reason_is_exported_from_the_start() -> None:
    store = notices_store()
    assert exported(store, wired(store)) == counts()


def test_ignored_acks_are_summed_over_branches_once_each() -> None:
    store = notices_store()
    metrics = wired(store)
    store.apply_events("r1", "b1", "a1", [ack(1, 3, "n999-1"), ack(2, 4, None)], 2000.0)
    store.apply_events("r1", "b2", "a1", [ack(1, 3, "n5-1")], 2000.0)
    assert exported(store, metrics) == counts(unknown_notice=2, no_notice=1)
    assert exported(store, metrics) == counts(unknown_notice=2, no_notice=1)  # no recount
    store.apply_events("r1", "b2", "a1", [ack(2, 5, None)], 2001.0)
    assert exported(store, metrics) == counts(unknown_notice=2, no_notice=2)
    detail = store.branch_detail("r1", "b1", 2002.0)
    assert detail is not None and detail.acks_ignored == {"no_notice": 1, "unknown_notice": 1}


def test_a_branch_dropped_as_stale_leaves_its_acks_in_the_sum() -> None:
    store = notices_store()
    metrics = wired(store)
    store.apply_events("r1", "b1", "a1", [ack(1, 3, "n999-1")], 1000.0)
    assert exported(store, metrics) == counts(unknown_notice=1)
    assert store.expire_stale(10_000.0, max_age=60.0) == [("r1", "b1")]
    assert exported(store, metrics) == counts(unknown_notice=1)
    store.apply_events("r1", "b1", "a1", [ack(2, 3, "n999-2")], 10_001.0)  # back, from 0
    assert exported(store, metrics) == counts(unknown_notice=2)


def test_a_restored_snapshot_carries_the_branch_counts_over() -> None:
    store = notices_store()
    store.apply_events("r1", "b1", "a1", [ack(1, 3, "n999-1"), ack(2, 4, None)], 2000.0)
    restored = Store.restore(FloorConfig(), store.snapshot(), notices=NoticesConfig())
    assert exported(restored, wired(restored)) == counts(unknown_notice=1, no_notice=1)


def test_with_notices_off_nothing_is_counted() -> None:
    store = Store(FloorConfig(), notices=NoticesConfig(enabled=False))
    store.apply_events("r1", "b1", "a1", [ack(1, 3, "n999-1")], 2000.0)
    assert exported(store, wired(store)) == counts()


@pytest.fixture
def collector() -> Iterator[Collector]:
    """The collector as it runs, but for MQTT: events go straight to its ingest."""
    config = CollectorConfig(http=HttpConfig(listen="127.0.0.1:0"))
    running = Collector(config, rebuild=False)
    thread = threading.Thread(target=running.http.serve_forever, daemon=True)
    thread.start()
    yield running
    running.http.shutdown()
    running.http.server_close()
    thread.join(5)


def test_the_collector_exports_the_sum_on_its_metrics_page(collector: Collector) -> None:
    topic = topic_for("r1", "b1", "a1", "events")
    collector.ingestor.handle(topic, encode([ack(1, 3, "n999-1"), ack(2, 2, "n999-2")]))
    with urllib.request.urlopen(collector.http.url + "/metrics", timeout=10) as response:
        samples = parse_metrics(response.read().decode())
    assert sample(samples, FAMILY, reason="unknown_notice") == 2
    assert sample(samples, FAMILY, reason="wrong_post") == 0
