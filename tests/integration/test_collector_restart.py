"""Restart and crash of the collector mid-scenario: state identical to a reference.

Two collectors listen to the same broker: the reference runs throughout, the
other is stopped (SIGTERM) or killed (SIGKILL) and restarted from its state
dir. The agent answers replay requests, as real agents do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import metrics
from tests.integration import scenario
from tests.support import CollectorProcess, FakeAgent, Samples, rebuilt, sample, wait_until

pytestmark = pytest.mark.integration

SLOW_SNAPSHOTS = "[state]\nsnapshot_interval_seconds = 3600.0\n"
# Floor state only: a restarted collector holds its notices back for a few seconds, so a
# notice whose cause ends meanwhile goes out from one collector and not the other.
NO_NOTICES = "[notices]\nenabled = false\n"


def floor_only(samples: Samples) -> Samples:
    """The floor's samples, without what each collector observes by its own clock."""
    return {
        k: v
        for k, v in samples.items()
        if not k[0].startswith("branchwatch_collector_") and k[0] != metrics.AGENT_LAST_SEEN.name
    }


def without_last_seen(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Branch summaries without when each collector last heard the agents (its own clock)."""
    return [{**b, "agents": [{**a, "last_seen": None} for a in b["agents"]]} for b in branches]


def issued_cash(collector: CollectorProcess) -> float | None:
    labels = scenario.L(service="cash")
    return sample(collector.metrics(), "branchwatch_tickets_issued_total", **labels)


def settled(collector: CollectorProcess, reference: CollectorProcess) -> Samples:
    """Wait until both collectors show the same floor, rebuilt; return it."""

    def same() -> Samples | None:
        ours, theirs = floor_only(collector.metrics()), floor_only(reference.metrics())
        return ours if ours and ours == theirs and rebuilt(ours) else None

    result: Samples = wait_until(same, 15, "restarted collector to match the reference")
    return result


HALF: Final = 20  # script events published before the subject restarts


def publish_first_half(
    reference: CollectorProcess, subject: CollectorProcess, agent: FakeAgent
) -> None:
    """The script's first HALF events, until both collectors show them alike."""
    agent.publish(scenario.events(1, HALF))
    settled(subject, reference)


@pytest.fixture
def agent(mosquitto: EmbeddedBroker) -> Iterator[FakeAgent]:
    fake = FakeAgent(mosquitto.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    yield fake
    fake.close()


@pytest.fixture
def pair(
    mosquitto: EmbeddedBroker, tmp_path: Path
) -> Iterator[tuple[CollectorProcess, CollectorProcess]]:
    (tmp_path / "ref").mkdir()
    (tmp_path / "subject").mkdir()
    config = tmp_path / "subject.toml"
    config.write_text(SLOW_SNAPSHOTS + NO_NOTICES)
    reference_config = tmp_path / "reference.toml"
    reference_config.write_text(NO_NOTICES)
    reference = CollectorProcess(
        mosquitto.url, tmp_path / "ref", "reference", extra=["--config", str(reference_config)]
    ).start()
    subject = CollectorProcess(
        mosquitto.url, tmp_path / "subject", "subject", extra=["--config", str(config)]
    ).start()
    yield reference, subject
    reference.kill()
    subject.kill()


def test_sigterm_restart_restores_identical_state(
    pair: tuple[CollectorProcess, CollectorProcess], agent: FakeAgent
) -> None:
    reference, subject = pair
    publish_first_half(reference, subject, agent)

    assert subject.stop(timeout=5.0) == 0  # clean exit within 5 s, snapshot written
    agent.publish(scenario.events(HALF + 1, 27))  # queued by the broker for our session
    subject.start()
    agent.publish(scenario.events(28))
    final = settled(subject, reference)
    assert sample(final, "branchwatch_tickets_lost_total", **scenario.L(
        service="cash", reason="closed")) == 1  # fmt: skip
    ours, theirs = subject.api("/branches")["branches"], reference.api("/branches")["branches"]
    assert without_last_seen(ours) == without_last_seen(theirs)


def test_kill_9_after_snapshot_is_healed_by_replay(
    pair: tuple[CollectorProcess, CollectorProcess], agent: FakeAgent
) -> None:
    reference, subject = pair
    publish_first_half(reference, subject, agent)
    assert subject.stop() == 0  # the snapshot now holds seq 1..20
    subject.start()

    agent.publish(scenario.events(HALF + 1))
    settled(subject, reference)
    subject.kill()  # SIGKILL: seq 21.. were acknowledged but never snapshotted

    subject.start()
    final = settled(subject, reference)
    assert HALF + 1 in agent.replays  # the restored collector asked for exactly the rest
    assert sample(final, "branchwatch_branch_open", **scenario.L()) == 0


def test_corrupt_snapshot_is_quarantined_not_fatal(
    mosquitto: EmbeddedBroker, tmp_path: Path, agent: FakeAgent
) -> None:
    (tmp_path / "collector-snapshot.json").write_bytes(b"{not a snapshot")
    collector = CollectorProcess(mosquitto.url, tmp_path, "corrupt").start()
    try:
        agent.publish(scenario.events(1, 8))
        wait_until(lambda: issued_cash(collector) == 1, 10, "ingest after a bad snapshot")
        assert list(tmp_path.glob("collector-snapshot.json.bad-*"))
        assert "snapshot unusable" in collector.log()
    finally:
        collector.kill()
