"""Store: seq gaps are asked for again with backoff until they arrive or are shown lost."""

from __future__ import annotations

from branchwatch.contract import events as ev
from branchwatch.contract.messages import Status
from collector.floor.agents import MAX_MISSING_PER_AGENT
from collector.floor.config import FloorConfig
from collector.gaps import LONGEST_WAIT
from collector.store import ApplyResult, Store
from tests.support import parse_metrics, sample

WAIT = 10.0


def staffed(*seqs: int) -> list[ev.Event]:
    return [
        ev.PositionStaffed(v=1, seq=s, ts=100.0 + s, device="btn", position=3, staff=f"s{s}")
        for s in seqs
    ]


def send(store: Store, *seqs: int, received: float = 1000.0) -> ApplyResult:
    return store.apply_events("r1", "b1", "a1", staffed(*seqs), received)


def figures(store: Store) -> tuple[float | None, float | None]:
    """(events_missing, events_lost_total) of agent a1, as exported."""
    samples = parse_metrics(store.render())
    labels = {"region": "r1", "branch": "b1", "agent": "a1"}
    return (
        sample(samples, "branchwatch_agent_events_missing", **labels),
        sample(samples, "branchwatch_agent_events_lost_total", **labels),
    )


def agent_view(store: Store) -> tuple[int, int]:
    (summary,) = store.branch_summaries(0.0)
    return summary.agents[0].events_missing, summary.agents[0].events_lost


def gapped_store() -> Store:
    """Agent a1 sent 1, 2 and 6: 3, 4 and 5 are missing."""
    store = Store(FloorConfig())
    send(store, 1, 2, 6)
    assert figures(store) == (3.0, 0.0)
    return store


def test_a_gap_is_asked_for_again_with_growing_delays() -> None:
    store = gapped_store()
    asked = [t for t in range(0, 200) if store.replay_asks(float(t), WAIT)]
    assert asked == [0, 10, 30, 70, 150]  # 10, 20, 40, 80 s apart
    send(store, 3, received=200.0)  # progress: the delays start over
    assert store.replay_asks(200.0, WAIT) == [("r1", "b1", "a1", 4)]
    assert store.replay_asks(205.0, WAIT) == []
    assert store.replay_asks(210.0, WAIT) == [("r1", "b1", "a1", 4)]


def test_the_delay_stops_growing_at_the_longest_wait() -> None:
    store = gapped_store()
    times: list[float] = []
    now = 0.0
    while len(times) < 12:
        if store.replay_asks(now, WAIT):
            times.append(now)
        now += 5.0
    assert times[-1] - times[-2] == LONGEST_WAIT


def test_gaps_filled_leave_nothing_missing_and_nothing_lost() -> None:
    store = gapped_store()
    assert store.replay_asks(0.0, WAIT) == [("r1", "b1", "a1", 3)]
    result = send(store, 3, 4, 5, 6, received=1.0)
    assert (result.late, result.duplicate, result.lost) == (3, 1, 0)
    assert figures(store) == (0.0, 0.0) and agent_view(store) == (0, 0)
    assert store.replay_asks(100.0, WAIT) == []


def test_seqs_an_answer_skips_twice_are_lost_and_dropped() -> None:
    store = gapped_store()
    store.replay_asks(0.0, WAIT)
    first = send(store, 4, 5, 6, received=1.0)  # the agent no longer holds 3
    assert (first.late, first.lost) == (2, 0)  # a hint only ...
    assert store.replay_asks(1.5, WAIT) == [("r1", "b1", "a1", 3)]  # ... asked again at once
    second = send(store, 4, 5, 6, received=2.0)  # the same skip: 3 is gone
    assert (second.duplicate, second.lost) == (3, 1)
    assert figures(store) == (0.0, 1.0) and agent_view(store) == (0, 1)
    assert store.replay_asks(100.0, WAIT) == []
    assert send(store, 3, received=3.0).duplicate == 1  # given up: no longer fillable


def test_an_answer_that_holds_nothing_asked_for_shows_only_duplicates() -> None:
    store = gapped_store()
    for now in (0.0, 1.0):
        store.replay_asks(now, WAIT)
        send(store, 6, received=now + 0.5)  # the agent holds 6 and later only
    assert figures(store) == (0.0, 3.0)


def test_one_stray_duplicate_writes_nothing_off() -> None:
    """A broker may redeliver a message once after a reconnect: that is a hint, not proof."""
    store = gapped_store()
    store.replay_asks(0.0, WAIT)
    send(store, 6, received=0.1)  # a redelivered duplicate, not the answer
    store.replay_asks(0.2, WAIT)
    assert send(store, 3, 4, 5, 6, received=0.3).late == 3  # the real answer
    assert figures(store) == (0.0, 0.0)


def test_the_tail_of_an_earlier_answer_is_not_a_new_answer() -> None:
    store = gapped_store()
    send(store, 10, received=0.0)  # 7, 8, 9 missing too
    store.replay_asks(0.0, WAIT)  # from 3
    send(store, 4, 5, received=0.1)  # skips 3: a hint, asked again at once
    store.replay_asks(0.2, WAIT)
    # The first answer goes on (above 5): not the start of the second one.
    assert send(store, 6, 7, 8, received=0.3).lost == 0
    # The second answer starts: 3 is skipped again, so lost.
    assert send(store, 4, 5, 6, 7, 8, 9, received=0.4).lost == 1
    assert figures(store) == (0.0, 1.0)


def test_an_offline_agent_is_not_asked_until_it_speaks_again() -> None:
    store = gapped_store()
    offline = Status(v=1, state="offline", session=2)
    store.apply_status("r1", "b1", "a1", offline, 0.0)
    assert store.replay_asks(0.0, WAIT) == []
    send(store, 7, received=5.0)  # an agent that speaks is up
    assert store.replay_asks(5.0, WAIT) == [("r1", "b1", "a1", 3)]


def test_a_lost_session_asks_every_agent_and_every_gap_at_once() -> None:
    store = gapped_store()
    store.replay_asks(0.0, WAIT)
    assert store.replay_asks(1.0, WAIT) == []
    assert store.session_lost() == [("r1", "b1", "a1", 7)]
    assert store.replay_asks(1.0, WAIT) == [("r1", "b1", "a1", 3)]


def test_seqs_beyond_the_missing_bound_are_lost_at_once() -> None:
    store = Store(FloorConfig())
    send(store, 1)
    assert send(store, MAX_MISSING_PER_AGENT + 12).missing == MAX_MISSING_PER_AGENT + 10
    assert figures(store) == (MAX_MISSING_PER_AGENT, 10.0)


def test_missing_and_lost_survive_a_snapshot_and_the_gap_is_asked_for_again() -> None:
    store = gapped_store()
    store.replay_asks(0.0, WAIT)
    send(store, 5, 6, received=1.0)
    store.replay_asks(1.0, WAIT)
    send(store, 5, 6, received=2.0)  # 3 and 4 lost
    send(store, 9, received=3.0)  # 7 and 8 missing
    restored = Store.restore(FloorConfig(), store.snapshot())
    assert figures(restored) == (2.0, 2.0)
    assert restored.replay_asks(10.0, WAIT) == [("r1", "b1", "a1", 7)]
