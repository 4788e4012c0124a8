"""Store: an agent that lost its spool and began a fresh one (seqs from the clock).

The old spool's missing seqs are lost, only the new spool's skipped seqs are missing,
replays are asked from the new spool's start, and nothing shows ~10^15 of anything.
"""

from __future__ import annotations

import logging
import threading

import pytest

from branchwatch.contract import encode, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.seqs import NEW_SPOOL_JUMP, fresh_seq_base, spool_start
from collector.floor import agents
from collector.floor.agents import MAX_MISSING_PER_AGENT, NewSpool
from collector.floor.branch import new_agent
from collector.floor.config import FloorConfig
from collector.ingest import Ingestor
from collector.selfmetrics import SelfMetrics
from collector.store import ApplyResult, Store
from tests.support import parse_metrics, sample

WAIT = 10.0
# The agent's fresh spool, made at 2026-12-01T09:00:00Z: its first event takes BASE + 1.
BASE = fresh_seq_base(1_796_115_600.0)
# Every count the collector exports stays below this (seqs themselves may be large).
SMALL = 100_000


def staffed(*seqs: int) -> list[ev.Event]:
    return [
        ev.PositionStaffed(v=1, seq=s, ts=100.0 + n, device="btn", position=3, staff=f"s{n}")
        for n, s in enumerate(seqs)
    ]


def send(store: Store, *seqs: int, received: float = 1000.0) -> ApplyResult:
    return store.apply_events("r1", "b1", "a1", staffed(*seqs), received)


def exported(store: Store) -> tuple[float | None, float | None]:
    """(events_missing, events_lost_total) of agent a1, as exported."""
    samples = parse_metrics(store.render())
    labels = {"region": "r1", "branch": "b1", "agent": "a1"}
    return (
        sample(samples, "branchwatch_agent_events_missing", **labels),
        sample(samples, "branchwatch_agent_events_lost_total", **labels),
    )


def api(store: Store) -> tuple[int, int, int, int | None]:
    """(events_missing, events_lost, spools_started, spool_first_seq) of a1 in the API."""
    (summary,) = store.branch_summaries(0.0)
    a = summary.agents[0]
    return a.events_missing, a.events_lost, a.spools_started, a.spool_first_seq


def old_spool_with_a_gap() -> Store:
    """a1's old spool sent 1, 2 and 6 (3, 4, 5 missing) and was then lost."""
    store = Store(FloorConfig())
    send(store, 1, 2, 6)
    assert api(store) == (3, 0, 0, None)
    return store


def test_the_old_spools_missing_seqs_are_lost_and_only_the_new_spools_are_missing() -> None:
    store = old_spool_with_a_gap()
    # The new spool's first two events were missed; its third arrives.
    result = send(store, BASE + 3)
    assert (result.applied, result.missing, result.duplicate) == (1, 2, 0)
    assert api(store) == (2, 3, 1, BASE + 1)
    assert exported(store) == (2.0, 3.0)
    assert store.first_missing("r1", "b1", "a1") == BASE + 1


def test_a_new_spool_heard_from_its_first_event_has_nothing_missing() -> None:
    store = old_spool_with_a_gap()
    result = send(store, BASE + 1, BASE + 2)
    assert (result.applied, result.missing) == (2, 0)
    assert api(store) == (0, 3, 1, BASE + 1)
    assert store.replay_asks(0.0, WAIT) == []


def test_no_huge_count_anywhere() -> None:
    store = old_spool_with_a_gap()
    result = send(store, BASE + 50)
    assert 0 <= result.missing < SMALL and result.lost < SMALL
    for (name, _), value in parse_metrics(store.render()).items():
        if name.startswith("branchwatch_agent_") and "timestamp" not in name:
            assert value < SMALL, name
    missing, lost, started, first = api(store)
    assert (missing, lost, started) == (49, 3, 1)
    assert first == spool_start(BASE + 50) == BASE + 1


def test_a_new_spool_far_in_keeps_the_bound_and_counts_the_rest_lost() -> None:
    store = old_spool_with_a_gap()
    far = BASE + MAX_MISSING_PER_AGENT + 21  # 20 more skipped than remembered
    assert send(store, far).missing == MAX_MISSING_PER_AGENT + 20
    assert api(store)[:3] == (MAX_MISSING_PER_AGENT, 3 + 20, 1)


def test_replays_are_asked_from_the_new_spools_start_and_filled() -> None:
    store = old_spool_with_a_gap()
    assert store.replay_asks(0.0, WAIT) == [("r1", "b1", "a1", 3)]
    send(store, BASE + 4, received=1.0)
    # The old ask's backoff and answers do not hold back the new spool's: asked at once.
    assert store.replay_asks(1.0, WAIT) == [("r1", "b1", "a1", BASE + 1)]
    answer = send(store, BASE + 1, BASE + 2, BASE + 3, BASE + 4, received=2.0)
    assert (answer.late, answer.duplicate, answer.lost) == (3, 1, 0)
    assert api(store) == (0, 3, 1, BASE + 1)
    assert store.replay_asks(100.0, WAIT) == []


def test_an_answer_of_the_new_spool_that_skips_its_start_twice_makes_it_lost() -> None:
    store = old_spool_with_a_gap()
    store.replay_asks(0.0, WAIT)
    send(store, 4, 5, 6, received=0.5)  # the old spool's answer skips 3: a hint
    send(store, BASE + 4, received=1.0)  # then the spool is lost and a new one speaks
    assert store.replay_asks(1.0, WAIT) == [("r1", "b1", "a1", BASE + 1)]
    # The new spool no longer holds its first event (BASE + 1): skipped twice, lost.
    assert send(store, BASE + 2, BASE + 3, BASE + 4, received=1.5).lost == 0
    assert store.replay_asks(1.6, WAIT) == [("r1", "b1", "a1", BASE + 1)]
    assert send(store, BASE + 2, BASE + 3, BASE + 4, received=2.0).lost == 1
    # Lost: the old spool's 3 (4 and 5 came in its answer) and the new spool's first.
    assert api(store) == (0, 1 + 1, 1, BASE + 1)


def test_events_of_the_old_spool_after_the_switch_are_duplicates() -> None:
    store = old_spool_with_a_gap()
    send(store, BASE + 1)
    late = send(store, 3, 7)
    assert (late.applied, late.late, late.duplicate) == (0, 0, 2)
    assert api(store) == (0, 3, 1, BASE + 1)


def test_a_second_new_spool_counts_again() -> None:
    store = old_spool_with_a_gap()
    send(store, BASE + 1)
    later = fresh_seq_base(1_796_202_000.0)  # a day later
    assert send(store, later + 2).missing == 1
    assert api(store) == (1, 3, 2, later + 1)


def test_a_jump_just_within_one_spool_is_an_ordinary_gap() -> None:
    store = Store(FloorConfig())
    send(store, 1)
    result = send(store, 1 + NEW_SPOOL_JUMP)  # no spool skips more than this
    assert result.missing == NEW_SPOOL_JUMP - 1
    assert api(store)[2] == 0


def test_the_snapshot_keeps_the_new_spool() -> None:
    store = old_spool_with_a_gap()
    send(store, BASE + 4)
    restored = Store.restore(FloorConfig(), store.snapshot())
    assert api(restored) == (3, 3, 1, BASE + 1)
    assert exported(restored) == (3.0, 3.0)
    assert restored.replay_asks(0.0, WAIT) == [("r1", "b1", "a1", BASE + 1)]
    assert send(restored, BASE + 1, BASE + 2, BASE + 3, received=1.0).late == 3
    assert api(restored) == (0, 3, 1, BASE + 1)


def test_record_gap_reports_the_switch_for_the_log() -> None:
    agent = new_agent("a1", 0.0)
    switches: list[NewSpool] = []
    assert agents.record_gap(agent, 6, 9, switches) == 2
    assert switches == []
    assert agents.record_gap(agent, 9, BASE + 5, switches) == 4
    assert switches == [NewSpool("a1", 9, BASE + 5, BASE + 1, 2)]
    line = agents.describe_new_spool(switches[0])
    assert "agent a1 began a new spool" in line and f"starting at {BASE + 1}" in line
    assert "2 seqs still missing from the old spool are lost" in line


def test_the_ingest_logs_a_new_spool_once_with_what_was_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = old_spool_with_a_gap()
    ingest = Ingestor(store, threading.Lock(), SelfMetrics(), "bw")
    topic = topic_for("r1", "b1", "a1", "events")
    with caplog.at_level(logging.WARNING, logger="collector.ingest"):
        ingest.handle(topic, encode(staffed(BASE + 1)))
        ingest.handle(topic, encode(staffed(BASE + 2)))
    lines = [r.getMessage() for r in caplog.records if "new spool" in r.getMessage()]
    assert lines == [
        f"r1/b1/a1: agent a1 began a new spool (its old one was lost): seq {BASE + 1} after 6,"
        f" the new spool starting at {BASE + 1}; 3 seqs still missing from the old spool are lost"
    ]
