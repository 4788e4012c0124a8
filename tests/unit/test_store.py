"""Store: per-agent seq tracking (duplicates, gaps, late fills), replay, staleness, views."""

from __future__ import annotations

import msgspec
import pytest

from branchwatch.contract import events as ev
from branchwatch.contract.messages import Status
from collector.floor.agents import MAX_MISSING_PER_AGENT
from collector.floor.config import FloorConfig
from collector.store import ApplyResult, Store


def staffed(*seqs: int, ts: float = 100.0) -> list[ev.Event]:
    return [
        ev.PositionStaffed(v=1, seq=s, ts=ts + s, device="btn", position=3, staff=f"s{s}")
        for s in seqs
    ]


def send(store: Store, *seqs: int, agent: str = "a1", received: float = 1000.0) -> ApplyResult:
    return store.apply_events("r1", "b1", agent, staffed(*seqs), received)


def staff_at_post_3(store: Store) -> list[str]:
    detail = store.branch_detail("r1", "b1", now=0.0)
    assert detail is not None
    return next(p.staff for p in detail.positions if p.position == 3)


@pytest.mark.parametrize(
    ("batches", "expected"),
    [
        # (applied, late, duplicate, missing, first_missing) after the last batch
        ([[42]], (1, 0, 0, 0, None)),  # the first event ever is accepted whatever its seq
        ([[1, 2], [3, 4]], (2, 0, 0, 0, None)),
        ([[1, 2, 3], [2, 3]], (0, 0, 2, 0, None)),
        ([[5], [9]], (1, 0, 0, 3, 6)),
        ([[5], [9], [7]], (0, 1, 0, 0, 6)),
        ([[5], [9], [7, 8, 10]], (1, 2, 0, 0, 6)),
        ([[5], [9], [6, 7, 8], [7]], (0, 0, 1, 0, None)),  # filled once, then a duplicate
        ([[1], [3, 6]], (2, 0, 0, 3, 2)),  # gaps inside one batch
    ],
)
def test_seq_tracking(
    batches: list[list[int]], expected: tuple[int, int, int, int, int | None]
) -> None:
    store = Store(FloorConfig())
    result = ApplyResult()
    for batch in batches:
        result = send(store, *batch)
    first_missing = store.first_missing("r1", "b1", "a1")
    assert (
        result.applied,
        result.late,
        result.duplicate,
        result.missing,
        first_missing,
    ) == expected


def test_duplicates_change_nothing() -> None:
    store = Store(FloorConfig())
    send(store, 1, 2)
    before = store.render()
    assert send(store, 2).duplicate == 1
    assert store.render() == before
    assert staff_at_post_3(store) == ["s1", "s2"]


def test_seqs_are_per_agent() -> None:
    store = Store(FloorConfig())
    send(store, 10, agent="a1")
    result = send(store, 3, agent="a2")
    assert (result.applied, result.missing) == (1, 0)
    assert store.replay_requests() == [("r1", "b1", "a1", 11), ("r1", "b1", "a2", 4)]


def test_missing_set_is_bounded_and_forgets_the_oldest() -> None:
    store = Store(FloorConfig())
    send(store, 1)
    result = send(store, 1_000_002)
    assert result.missing == 1_000_000  # counted in full
    oldest = 1_000_002 - MAX_MISSING_PER_AGENT
    assert store.first_missing("r1", "b1", "a1") == oldest
    assert send(store, oldest - 1).duplicate == 1  # forgotten: no longer fillable
    assert send(store, oldest).late == 1
    assert store.first_missing("r1", "b1", "a1") == oldest + 1


def test_a_refused_event_still_consumes_its_seq() -> None:
    store = Store(FloorConfig())
    issue = ev.TicketIssued(v=1, seq=1, ts=1.0, device="q", ticket="A1", service="mortgage")
    assert store.apply_events("r1", "b1", "a1", [issue], 10.0).rejected == {"unknown_service": 1}
    assert store.apply_events("r1", "b1", "a1", [issue], 11.0).duplicate == 1
    assert store.replay_requests() == [("r1", "b1", "a1", 2)]


def test_a_refused_late_event_leaves_the_missing_set() -> None:
    store = Store(FloorConfig())
    send(store, 1, 3)
    bad = ev.PositionStaffed(v=1, seq=2, ts=1.0, device="btn", position=50)
    assert store.apply_events("r1", "b1", "a1", [bad], 10.0).rejected == {"unknown_position": 1}
    assert store.first_missing("r1", "b1", "a1") is None


def test_every_event_lands_in_one_bucket() -> None:
    store = Store(FloorConfig())
    send(store, 1, 5)
    events = [
        *staffed(2),  # late
        *staffed(3),  # late
        *staffed(5),  # duplicate
        ev.PositionStaffed(v=1, seq=6, ts=1.0, device="btn", position=77),  # refused
        *staffed(8),  # applied, 7 missing
    ]
    result = store.apply_events("r1", "b1", "a1", events, 1000.0)
    assert msgspec.structs.asdict(result) == {
        "applied": 1,
        "late": 2,
        "duplicate": 1,
        "missing": 1,
        "rejected": {"unknown_position": 1},
        "held": 0,
        "lost": 0,
        "refused": {},
        "new_spools": [],
    }


def test_replay_requests_cover_status_only_agents_from_zero() -> None:
    store = Store(FloorConfig())
    store.apply_status(
        "r2", "b9", "a1", Status(v=1, state="online", session=1, ts=5.0), received=5.0
    )
    send(store, 7)
    assert store.replay_requests() == [("r1", "b1", "a1", 8), ("r2", "b9", "a1", 0)]
    assert store.first_missing("r2", "b9", "a1") is None
    assert store.first_missing("nowhere", "b1", "a1") is None


def test_expire_stale_drops_branches_not_heard_from() -> None:
    store = Store(FloorConfig())
    store.apply_events("r1", "old", "a1", staffed(1), received=1000.0)
    store.apply_events("r1", "new", "a1", staffed(1), received=1500.0)
    store.apply_status("r1", "old", "a2", Status(v=1, state="offline", session=1), received=1100.0)
    assert 'branch="old"' in store.render()
    assert store.expire_stale(now=1700.0, max_age=600.0) == []  # 600 s since old: not more
    assert store.expire_stale(now=1700.5, max_age=600.0) == [("r1", "old")]
    assert store.branch_count == 1
    assert 'branch="old"' not in store.render()
    assert [s.branch for s in store.branch_summaries(now=1700.0)] == ["new"]
    assert store.branch_detail("r1", "old", now=1700.0) is None
    assert [r[:3] for r in store.replay_requests()] == [("r1", "new", "a1")]


def test_a_dropped_branch_starts_afresh() -> None:
    store = Store(FloorConfig())
    send(store, 1, 2, received=10.0)
    store.expire_stale(now=1000.0, max_age=60.0)
    result = send(store, 1, received=2000.0)
    assert (result.applied, result.duplicate) == (1, 0)
    assert staff_at_post_3(store) == ["s1"]


def test_summaries_are_sorted_and_json_encodable() -> None:
    store = Store(FloorConfig())
    for region, branch in [("south", "b2"), ("north", "b9"), ("south", "b1")]:
        store.apply_events(region, branch, "a1", staffed(1), received=10.0)
    summaries = store.branch_summaries(now=20.0)
    assert [(s.region, s.branch) for s in summaries] == [
        ("north", "b9"),
        ("south", "b1"),
        ("south", "b2"),
    ]
    decoded = msgspec.json.decode(msgspec.json.encode(summaries))
    assert decoded[0]["positions"][2]["staff"] == ["s1"]
    assert set(decoded[0]) >= {"waiting", "empty_required", "agents", "devices", "satisfaction"}
    detail = msgspec.json.decode(msgspec.json.encode(store.branch_detail("north", "b9", now=20.0)))
    assert set(detail) >= {"tickets", "counter_list", "services", "evaluations", "region"}


def test_an_empty_batch_changes_nothing() -> None:
    store = Store(FloorConfig())
    assert store.apply_events("r1", "b1", "a1", [], 1.0) == ApplyResult()
    assert store.branch_count == 0


def test_gaps_accumulate_into_the_bound() -> None:
    store = Store(FloorConfig())
    step = MAX_MISSING_PER_AGENT * 3 // 4
    send(store, 1)
    received = 1 + step + 1
    send(store, received)  # seqs 2 .. received - 1 missing
    newest = received + step + 1
    send(store, newest)  # step more missing: the oldest of the first gap are forgotten
    # the newest MAX seqs below `newest`, skipping the one received in between
    oldest = newest - MAX_MISSING_PER_AGENT - 1
    assert store.first_missing("r1", "b1", "a1") == oldest
    assert send(store, oldest - 1).duplicate == 1
    assert send(store, oldest).late == 1
    assert send(store, received - 1).late == 1
    assert send(store, received).duplicate == 1


class UnknownEvent(ev.Event, tag="vendor.custom", frozen=True):
    pass


def test_an_event_class_without_a_handler_is_refused() -> None:
    store = Store(FloorConfig())
    event = UnknownEvent(v=1, seq=1, ts=1.0, device="x")
    result = store.apply_events("r1", "b1", "a1", [event, *staffed(2)], 1.0)
    assert (result.applied, result.rejected) == (1, {"unknown_type": 1})
