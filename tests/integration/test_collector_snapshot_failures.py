"""A snapshot that cannot be written is counted, and the last good one's time exported.

The state dir fails for real: a directory stands where the collector writes its
temporary snapshot file (as root, permissions would not stop the write).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from collector.statefile import SNAPSHOT_NAME
from tests.integration import scenario
from tests.support import CollectorProcess, FakeAgent, sample, wait_until

pytestmark = pytest.mark.integration

FAILURES = "branchwatch_collector_snapshot_failures_total"
LAST_SUCCESS = "branchwatch_collector_snapshot_last_success_timestamp_seconds"


def figures(collector: CollectorProcess) -> tuple[float, float]:
    """(snapshot failures, last success timestamp) as the collector exports them."""
    samples = collector.metrics()
    failures, last = sample(samples, FAILURES), sample(samples, LAST_SUCCESS)
    assert failures is not None and last is not None
    return failures, last


@pytest.fixture
def agent(mosquitto: EmbeddedBroker) -> Iterator[FakeAgent]:
    fake = FakeAgent(mosquitto.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    yield fake
    fake.close()


def test_failed_snapshots_are_counted_until_the_state_dir_works_again(
    mosquitto: EmbeddedBroker, agent: FakeAgent, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "collector.toml"
    config.write_text("[state]\nsnapshot_interval_seconds = 0.2\n")
    collector = CollectorProcess(
        mosquitto.url, state, "snapfail", extra=["--config", str(config)]
    ).start()
    try:
        assert figures(collector) == (0.0, 0.0)  # no snapshot yet, none failed
        agent.publish(scenario.events(1, 2))
        _, written = wait_until(
            lambda: (f := figures(collector))[1] > 0 and f, 10, "a first snapshot"
        )
        assert written == pytest.approx((state / SNAPSHOT_NAME).stat().st_mtime, abs=1.0)

        blocker = state / SNAPSHOT_NAME
        blocker = blocker.with_suffix(".tmp")
        blocker.mkdir()  # the temporary file cannot be opened: every write fails
        agent.publish(scenario.events(3, 4))
        failures, last = wait_until(
            lambda: (f := figures(collector))[0] >= 2 and f, 10, "snapshot failures counted"
        )
        assert last == written  # no success since
        # Every 0.2 s a failure, but one line a minute in the log.
        assert collector.log().count("cannot write snapshot") == 1

        blocker.rmdir()
        now_failures, recovered = wait_until(
            lambda: (f := figures(collector))[1] > written and f, 10, "a snapshot again"
        )
        assert now_failures >= failures
        assert figures(collector)[0] == now_failures  # nothing fails any more
        assert collector.stop() == 0
    finally:
        collector.kill()

    # Restarted: the snapshot it finds is the last success until it writes one.
    found = (state / SNAPSHOT_NAME).stat().st_mtime
    assert found >= recovered
    restarted = CollectorProcess(
        mosquitto.url, state, "snapfail", extra=["--config", str(config)]
    ).start()
    try:
        failures, last = figures(restarted)
        assert failures == 0.0 and last == pytest.approx(found, abs=1e-3)
    finally:
        restarted.kill()
