"""The pure parts of ``make bench-scale`` (bench/scale_*.py): the exactness check that sets
its exit status, the branch slices of the shards, the probe figures, the PUBACK watch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.scale_measure import check, nats_hash, whose
from bench.scale_probe import Poller, ProbeAgent
from bench.scale_run import region_slices
from bench.scale_sim import PubackWatch
from bench.scale_stack import Stack


def shown(branch: str, last_seq: int | None, issued: int, served: int, rated: int,
          missing: int = 0) -> dict[str, Any]:  # fmt: skip
    """A branch as the collector's /api/v1/branches shows it (the fields the check reads)."""
    return {
        "branch": branch,
        "issued_total": issued,
        "served_total": served,
        "ratings": {"very_satisfied": rated, "satisfied": 0},
        "agents": [{"agent": "edge-1", "last_seq": last_seq, "events_missing": missing}],
    }


TRUTH = {
    "br-0001": {"events": 40, "last_seq": 40, "issued": 10, "served": 8, "rated": 3},
    "br-0002": {"events": 25, "last_seq": 25, "issued": 6, "served": 6, "rated": 1},
}


def test_exact_when_every_agent_and_count_matches() -> None:
    result = check([shown("br-0001", 40, 10, 8, 3), shown("br-0002", 25, 6, 6, 1)], TRUTH)
    assert result.exact
    assert (result.agents, result.events, result.expected, result.counted) == (2, 65, 34, 34)


def test_a_count_short_is_lost_and_one_over_is_double_counted() -> None:
    result = check([shown("br-0001", 40, 9, 8, 3), shown("br-0002", 25, 6, 7, 1)], TRUTH)
    assert (result.lost, result.duplicated) == (1, 1)
    assert not result.exact


def test_a_short_seq_a_gap_or_a_missing_branch_is_not_exact() -> None:
    behind = check([shown("br-0001", 39, 10, 8, 3), shown("br-0002", 25, 6, 6, 1)], TRUTH)
    assert behind.behind == ["br-0001: seq 39 of 40"] and not behind.exact
    gap = check([shown("br-0001", 40, 10, 8, 3), shown("br-0002", 25, 6, 6, 1, 2)], TRUTH)
    assert gap.missing == 2 and not gap.exact
    absent = check([shown("br-0001", 40, 10, 8, 3)], TRUTH)
    assert absent.behind == ["br-0002: not shown"] and absent.lost == 13


@pytest.mark.parametrize(("branches", "regions", "shards"), [(10, 3, 1), (1500, 3, 4), (7, 2, 3)])
def test_the_shards_slices_cover_each_region_once(branches: int, regions: int, shards: int) -> None:
    slices = region_slices(branches, regions, shards)
    assert len(slices) == regions
    numbers = [list(range(first, last + 1)) for region in slices for first, last in region]
    assert sum(len(n) for n in numbers) == branches
    for region in slices:
        covered = [n for first, last in region for n in range(first, last + 1)]
        assert covered == list(range(1, len(covered) + 1))  # br-0001.. with no hole or overlap


def poller_with(visible: dict[str, dict[int, float]]) -> Poller:
    poller = Poller("collector-north-a", "127.0.0.1", 1, "north")
    poller.visible = visible
    return poller


def test_the_stall_is_the_longest_time_with_no_probe_event_visible() -> None:
    poller = poller_with(
        {"via-mq1": {1: 100.2, 2: 100.5, 3: 109.0}, "via-mq2": {1: 100.4, 2: 103.0}}
    )
    # From the kill at 100.0: 103.0 -> 109.0 is the longest quiet time of the collector.
    assert poller.longest_gap(100.0, 110.0) == pytest.approx(6.0)
    assert poller.longest_gap(100.0, 110.0, agent="via-mq1") == pytest.approx(8.5)
    # Nothing visible at all: the whole window.
    assert poller_with({}).longest_gap(100.0, 110.0) == pytest.approx(10.0)


def test_latency_pairs_each_published_seq_with_when_it_became_visible(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("x\n")
    probe = ProbeAgent("north", "via-mq1", ["mqtt://127.0.0.1:1"], password, 0.25, 5.0)
    probe.published = {1: 100.0, 2: 100.25, 3: 100.5}
    poller = poller_with({"via-mq1": {1: 100.05, 2: 101.25}})  # seq 3 never seen
    assert poller.latencies([probe], 100.0, 101.0) == pytest.approx([0.05, 1.0])
    assert poller.latencies([probe], 100.1, 101.0) == pytest.approx([1.0])


class Info:
    def __init__(self, mid: int) -> None:
        self.mid = mid


def test_the_puback_watch_counts_time_without_progress() -> None:
    now = [1000.0]
    watch = PubackWatch(clock=lambda: now[0])
    assert watch.stalled_for() == 0.0  # nothing waits for an acknowledgement
    watch.sent(Info(1))  # type: ignore[arg-type]
    watch.sent(Info(2))  # type: ignore[arg-type]
    now[0] += 3.0
    watch.acked(1)  # progress: the broker stores, if slowly
    now[0] += 4.0
    assert watch.stalled_for() == pytest.approx(4.0) and watch.outstanding() == 1
    watch.acked(99)  # not ours (or acknowledged twice): no progress
    assert watch.stalled_for() == pytest.approx(4.0)
    watch.restart_clock()  # a new connection sends it again
    assert watch.stalled_for() == 0.0
    watch.acked(2)
    now[0] += 60.0
    assert watch.stalled_for() == 0.0 and watch.outstanding() == 0


def test_a_variant_of_the_kit_changes_only_this_runs_copy(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ["north"], nats_mqtt={"ack_wait": '"30s"', "max_inflight": "5"})
    text = (stack.cluster.workdir / "branchwatch.conf").read_text()
    assert '  ack_wait: "30s"' in text and '  ack_wait: "5s"' not in text
    assert "mqtt {\n  max_inflight: 5\n" in text
    kit = (Path(__file__).resolve().parents[2] / "deploy" / "nats" / "branchwatch.conf").read_text()
    assert '  ack_wait: "5s"' in kit


def test_a_consumer_is_named_after_the_hash_of_its_sessions_client_id() -> None:
    # As a NATS 2.9 node names them (seen in /jsz and its log): the consumers of the MQTT
    # session "collector-north-a", the retained-message consumer of node mq1.
    assert nats_hash("collector-north-a") == "r9mFb6aj"
    assert nats_hash("mq1") == "8OAKP91B"
    led = [
        "meta",
        "$MQTT_msgs",
        "$MQTT_msgs consumer r9mFb6aj_JgZZnH602iBsK1rYPeD7oz events",
        "$MQTT_msgs consumer r9mFb6aj_JgZZnH602iBsK1rYPeD810 status",
        "$MQTT_msgs consumer zzzzzzzz_unknown cmd",
        "$MQTT_msgs consumer yyyyyyyy_unknown cmd",
        "$MQTT_rmsgs consumer $MQTT_rmsgs_8OAKP91B rmsgs",
    ]
    assert whose(led, ["collector-north-a", "collector-south-a", "mq1"]) == {
        "meta": 1,
        "$MQTT_msgs": 1,
        "$MQTT_msgs consumer of collector-north-a (events)": 1,
        "$MQTT_msgs consumer of collector-north-a (status)": 1,
        "$MQTT_msgs consumer of zzzzzzzz (cmd)": 1,
        "$MQTT_msgs consumer of yyyyyyyy (cmd)": 1,
        "$MQTT_rmsgs consumer of mq1 (rmsgs)": 1,
    }
