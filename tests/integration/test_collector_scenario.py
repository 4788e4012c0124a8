"""A scripted branch day through a real Mosquitto into the collector: exact values."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import Status, encode, topic_for
from branchwatch.contract.messages import DeviceStatus, SpoolStatus
from tests.integration import scenario
from tests.integration.scenario import AGENT, BRANCH, REGION, T0
from tests.support import CollectorProcess, FakeAgent, Samples, rebuilt, sample, wait_until

pytestmark = pytest.mark.integration
_ids = itertools.count()


@pytest.fixture
def collector(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(mosquitto.url, tmp_path, f"test-collector-{next(_ids)}").start()
    yield proc
    proc.kill()


@pytest.fixture
def agent(mosquitto: EmbeddedBroker) -> Iterator[FakeAgent]:
    fake = FakeAgent(mosquitto.port, REGION, BRANCH, AGENT)
    yield fake
    fake.close()


def accepted(samples: Samples) -> float:
    return sample(samples, "branchwatch_collector_messages_total", result="accepted") or 0.0


def wait_accepted(collector: CollectorProcess, count: int, *, applied: bool = True) -> Samples:
    """``count`` messages accepted and (``applied``) no longer held for a rebuild."""
    samples: Samples = wait_until(
        lambda: (
            (s := collector.metrics())
            and accepted(s) >= count
            and (rebuilt(s) or not applied)
            and s
        ),
        10,
        f"{count} accepted messages" + (", applied" if applied else ""),
    )
    return samples


def assert_expected(
    samples: Samples, expected: list[tuple[str, dict[str, str], float | None]]
) -> None:
    problems = []
    for name, labels, value in expected:
        got = sample(samples, name, **labels)
        if got != value:
            problems.append(f"{name}{labels}: expected {value}, got {got}")
    assert not problems, "\n".join(problems)


def test_scripted_day_gives_exact_metrics(collector: CollectorProcess, agent: FakeAgent) -> None:
    agent.publish(scenario.events(1, scenario.OPEN_PART))
    samples = wait_accepted(collector, scenario.OPEN_PART)
    assert_expected(samples, scenario.EXPECTED_OPEN)

    agent.publish(scenario.events(scenario.OPEN_PART + 1))
    samples = wait_accepted(collector, len(scenario.SCRIPT))
    assert_expected(samples, scenario.EXPECTED)
    assert sample(samples, "branchwatch_collector_events_missing_total") == 0
    assert sample(samples, "branchwatch_collector_messages_total", result="rejected") == 0


def test_every_post_of_a_seen_branch_starts_empty(
    collector: CollectorProcess, agent: FakeAgent
) -> None:
    agent.publish(scenario.events(1, 1))
    samples = wait_accepted(collector, 1)
    for position in range(1, 8):
        labels = scenario.L(position=str(position))
        assert sample(samples, "branchwatch_position_staffed", **labels) == 0
        assert sample(samples, "branchwatch_position_changed_timestamp_seconds", **labels) == T0


def test_status_session_rule_and_agent_metrics(
    collector: CollectorProcess, agent: FakeAgent
) -> None:
    status_topic = topic_for(REGION, BRANCH, AGENT, "status")
    online = Status(
        v=1,
        state="online",
        session=3,
        ts=T0 + 950,
        version="0.1.0",
        devices={"queue-1": DeviceStatus(kind="queue", link="up")},
        spool=SpoolStatus(depth=2, oldest_ts=T0 + 940),
    )
    sent = time.time()
    agent.publish_raw(status_topic, encode(online), retain=True)
    # The will of an older session arrives late: it must not mark the agent down.
    agent.publish_raw(status_topic, encode(Status(v=1, state="offline", session=2)))
    samples = wait_accepted(collector, 2, applied=False)  # statuses apply at once
    labels = scenario.L(agent=AGENT)
    assert sample(samples, "branchwatch_agent_up", **labels) == 1
    assert sample(samples, "branchwatch_agent_spool_depth", **labels) == 2
    # Seen when the collector received it (its clock), not at the status's own time.
    seen = sample(samples, "branchwatch_agent_last_seen_timestamp_seconds", **labels)
    assert seen is not None and sent - 1 <= seen <= time.time()
    device = scenario.L(agent=AGENT, device="queue-1", kind="queue")
    assert sample(samples, "branchwatch_device_up", **device) == 1

    agent.publish_raw(status_topic, encode(Status(v=1, state="offline", session=3)))
    samples = wait_accepted(collector, 3, applied=False)
    assert sample(samples, "branchwatch_agent_up", **labels) == 0
    assert sample(samples, "branchwatch_device_up", **device) == 0


def test_duplicates_are_dropped_and_counted(collector: CollectorProcess, agent: FakeAgent) -> None:
    agent.publish(scenario.events(1, 10))
    before = wait_accepted(collector, 10)
    # The agent's answer to the rebuild's replay was all duplicates already.
    duplicates = sample(before, "branchwatch_collector_messages_total", result="duplicate") or 0
    agent.publish(scenario.events(7, 9))  # issued A001, B001, A002 again
    samples = wait_until(
        lambda: (
            (s := collector.metrics())
            and sample(s, "branchwatch_collector_messages_total", result="duplicate")
            == duplicates + 3
            and s
        ),
        10,
        "3 duplicates",
    )
    for service in ("cash", "non_cash"):
        labels = scenario.L(service=service)
        name = "branchwatch_tickets_issued_total"
        assert sample(samples, name, **labels) == sample(before, name, **labels)
    assert sample(samples, "branchwatch_tickets_issued_total", **scenario.L(service="cash")) == 3


def test_gap_is_counted_and_filled_by_replay(collector: CollectorProcess, agent: FakeAgent) -> None:
    script = scenario.events(1, 12)
    agent.publish(script[:7])
    wait_accepted(collector, 7)
    agent.sent.extend(script[7:9])  # seq 8 and 9 "lost" on the way
    agent.publish(script[9:])
    samples = wait_until(
        lambda: (
            (s := collector.metrics())
            and sample(s, "branchwatch_tickets_issued_total", **scenario.L(service="cash")) == 3
            and s
        ),
        15,
        "the replay to fill the gap",
    )
    assert agent.replays == [0, 8]  # the rebuild's, then the gap's
    assert sample(samples, "branchwatch_collector_events_missing_total") == 2
    waits = sample(samples, "branchwatch_wait_seconds_count", **scenario.L(service="cash"))
    assert waits == 1


def test_json_api_reports_the_floor(collector: CollectorProcess, agent: FakeAgent) -> None:
    agent.publish(scenario.events(1, scenario.OPEN_PART))
    wait_accepted(collector, scenario.OPEN_PART)
    summary = collector.api("/branches")
    assert [(b["region"], b["branch"]) for b in summary["branches"]] == [(REGION, BRANCH)]
    branch = summary["branches"][0]
    assert branch["open"] is True
    assert branch["waiting"] == {"cash": 1, "non_cash": 0, "vip": 1, "corporate": 1}
    assert branch["waiting_total"] == 3
    assert branch["oldest_wait_since"] == T0 + 700
    assert branch["empty_required"] == [1, 2]
    assert branch["counters"] == {"open": 1, "paused": 1, "closed": 0}
    assert branch["ratings"]["very_satisfied"] == 1
    assert branch["satisfaction"] == 0.5
    detail = collector.api(f"/branches/{REGION}/{BRANCH}")["branch"]
    waiting = sorted(t["ticket"] for t in detail["tickets"] if t["state"] == "waiting")
    assert waiting == ["A004", "C001", "D001"]
    status, _ = collector.get(f"/api/v1/branches/{REGION}/nope")
    assert status == 404


def test_http_endpoints(collector: CollectorProcess) -> None:
    assert collector.get("/healthz") == (200, b"ok\n")
    assert collector.get("/readyz")[0] == 200
    assert collector.get("/nope")[0] == 404
    samples = collector.metrics()
    assert sample(samples, "branchwatch_collector_mqtt_connected") == 1
