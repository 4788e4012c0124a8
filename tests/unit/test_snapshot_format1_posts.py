"""A format-1 snapshot written before posts and intercom figures were kept compact restores.

``tests/fixtures/snapshot-format1-posts.bin`` was written by the collector of commit
22a608a (each post's staff marks in a dict by staff, each key a (ts, seq) pair; intercom
figures in dicts by calling post, then called post, and acks in a list per post) from
:data:`DAY`: check-ins, named check-outs (one with no check-in seen), anonymous staff,
anonymous vacates beyond those a post remembers, a missing seq; intercom pairs
answered, waiting and refused, an all-call, notice acks, and more acks of a post than
it keeps. The tests restore it and check that the branches behave as ones fed the same
events by this code, and export and answer what that collector did.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Final

from branchwatch.contract import events as ev
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.screen import LobbyScreen
from collector.store import Store
from tests.unit import events, store_views

FIXTURE: Final = Path(__file__).parent.parent / "fixtures" / "snapshot-format1-posts.bin"
CONFIG: Final = FloorConfig()
NOTICES: Final = NoticesConfig()
NOW: Final = 3000.0


E = partial(events.E, device="p1")


# Branch north/b1, agent a1; seqs 5 and 36 are missing (they come in LATER).
DAY: Final[list[ev.Event]] = [
    E(ev.BranchOpened, 1, 1000.0),
    # Post 1: lm checks in, leaves, comes back; an anonymous helper joins.
    E(ev.PositionStaffed, 2, 1001.0, position=1, staff="lm"),
    E(ev.PositionVacated, 3, 1100.0, position=1, staff="lm"),
    E(ev.PositionStaffed, 4, 1200.0, position=1, staff="lm"),
    E(ev.PositionStaffed, 6, 1210.0, position=1),
    # Post 3: two staff, an anonymous vacate empties it, one is back in the same second.
    E(ev.PositionStaffed, 7, 1002.0, position=3, staff="dir"),
    E(ev.PositionStaffed, 8, 1003.0, position=3, staff="dep"),
    E(ev.PositionVacated, 9, 1300.0, position=3),
    E(ev.PositionStaffed, 10, 1300.0, position=3, staff="dep"),
    # Post 5: more anonymous vacates than it remembers, a check-in before each.
    *(
        event
        for n in range(6)
        for event in (
            E(ev.PositionStaffed, 11 + 2 * n, 1400.0 + 10 * n, position=5, staff=f"t{n}"),
            E(ev.PositionVacated, 12 + 2 * n, 1405.0 + 10 * n, position=5),
        )
    ),
    E(ev.PositionStaffed, 23, 1500.0, position=5, staff="t9"),
    # Post 7: a named check-out with no check-in seen, then someone else's check-in.
    E(ev.PositionVacated, 24, 1020.0, position=7, staff="rm"),
    E(ev.PositionStaffed, 25, 1030.0, position=7, staff="sec"),
    # 1 -> 2 answered in 20 s; called again twice, answered by 2's acks at 1900 (200 s).
    E(ev.IntercomCall, 26, 1600.0, from_position=1, reason="assist", to_position=2),
    E(ev.IntercomAck, 27, 1620.0, position=2),
    E(ev.IntercomCall, 28, 1700.0, from_position=1, reason="assist", to_position=2),
    E(ev.IntercomCall, 29, 1705.0, from_position=1, reason="assist", to_position=2),
    # An all-call from 4, answered by 2's ack at 1620; notice acks answer nothing.
    E(ev.IntercomCall, 30, 1610.0, from_position=4, reason="backup"),
    E(ev.IntercomAck, 31, 1700.0, position=6, notice="n-1"),
    E(ev.IntercomAck, 32, 1760.0, position=6),
    # 3 -> 7 waits for its ack; a fourth pair is refused (max_intercom_pairs 3).
    E(ev.IntercomCall, 33, 1800.0, from_position=3, reason="vip", to_position=7),
    E(ev.IntercomCall, 34, 1810.0, from_position=6, reason="vip", to_position=1),
    # More acks of post 2 than a post keeps.
    *(E(ev.IntercomAck, 37 + n, 1900.0 + n, position=2) for n in range(10)),
    E(ev.IntercomAck, 47, 1790.0, position=7, notice="n-2"),
]

# Branch north/b2, agent a2: a quiet day, no intercom.
QUIET_DAY: Final[list[ev.Event]] = [
    E(ev.BranchOpened, 1, 500.0),
    E(ev.PositionStaffed, 2, 510.0, position=2, staff="t1"),
    E(ev.PositionVacated, 3, 520.0, position=2, staff="t1"),
]

LATER: Final[list[ev.Event]] = [
    E(ev.PositionStaffed, 5, 1205.0, position=1, staff="lm2"),  # replayed
    E(ev.IntercomAck, 36, 1820.0, position=7),  # replayed: answers 3 -> 7 after 20 s
    E(ev.PositionVacated, 48, 1950.0, position=1, staff="lm"),
    E(ev.PositionVacated, 49, 1960.0, position=5),
    E(ev.PositionStaffed, 50, 1970.0, position=7, staff="rm"),
    E(ev.IntercomAck, 51, 1990.0, position=2),  # nothing open
    E(ev.IntercomCall, 52, 2000.0, from_position=4, reason="backup"),
    E(ev.IntercomAck, 53, 2010.0, position=3),  # answers the all-call after 10 s
    E(ev.IntercomCall, 54, 2020.0, from_position=6, reason="vip", to_position=1),  # refused
]


def fed_store() -> Store:
    """The fixture's two branches, fed their events by this code."""
    store = Store(CONFIG, notices=NOTICES)
    store.apply_events("north", "b1", "a1", DAY, received=2100.0)
    store.apply_events("north", "b2", "a2", QUIET_DAY, received=600.0)
    return store


def restored_store() -> Store:
    return Store.restore(CONFIG, FIXTURE.read_bytes(), notices=NOTICES)


def observable(store: Store, screen: LobbyScreen) -> tuple[object, ...]:
    """What users see of the fixture's two branches."""
    return store_views.observable(store, screen, NOW, "north", ("b1", "b2"))


def positions(store: Store) -> list[tuple[int, list[str], list[str], float]]:
    detail = store.branch_detail("north", "b1", now=NOW)
    assert detail is not None
    return [(p.position, p.staff, p.last_staff, p.since) for p in detail.positions]


def ack_counts(store: Store) -> dict[str, str]:
    """Sum and count of each intercom pair of b1, as exported."""
    family = "branchwatch_intercom_ack_seconds"
    found: dict[str, str] = {}
    for line in store.render().splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith((f"{family}_sum{{", f"{family}_count{{")) and 'branch="b1"' in name:
            labels = name.split('branch="b1",')[1].rstrip("}")
            found[f"{name.split('{')[0].removeprefix(family)} {labels}"] = value
    return found


def test_the_fixture_restores_as_the_day_fed_now() -> None:
    restored, fed = restored_store(), fed_store()
    screen = LobbyScreen()
    assert observable(restored, screen) == observable(fed, screen)
    assert restored.snapshot() == fed.snapshot()
    # What the collector that wrote the fixture answered and exported.
    assert positions(restored) == [
        (1, ["lm", "(anonymous)"], [], 1210.0),
        (2, [], [], 1000.0),
        (3, ["dep"], ["dir"], 1300.0),
        (4, [], [], 1000.0),
        (5, ["t9"], ["t5"], 1500.0),
        (6, [], [], 1000.0),
        (7, ["sec"], [], 1030.0),
    ]
    assert ack_counts(restored) == {
        '_sum from_position="1",to_position="2"': "220.0",
        '_count from_position="1",to_position="2"': "2",
        '_sum from_position="3",to_position="7"': "0.0",
        '_count from_position="3",to_position="7"': "0",
        '_sum from_position="4",to_position="all"': "10.0",
        '_count from_position="4",to_position="all"': "1",
    }


def test_the_restored_state_keeps_nothing_in_the_old_form() -> None:
    branch = restored_store().branch_state("north", "b1")
    assert branch is not None
    assert all(post.marks is None for post in branch.posts.values())
    figures = branch.intercom
    assert (figures.ack_seconds, figures.called, figures.pending, figures.acks) == (None,) * 4
    assert [(p.source, p.target, p.called, p.pending) for p in figures.pairs] == [
        (1, "2", 1705.0, None),
        (3, "7", 1800.0, 1800.0),
        (4, "all", 1610.0, None),
    ]
    assert figures.ack_posts == bytes([6] + [2] * 8)  # post 2's newest 8 only
    assert figures.ack_ts == (1760.0, *(1900.0 + n for n in range(2, 10)))


def test_the_restored_day_goes_on_as_the_fed_one() -> None:
    restored, fed = restored_store(), fed_store()
    results = [s.apply_events("north", "b1", "a1", LATER, received=2200.0) for s in (restored, fed)]
    assert results[0] == results[1]
    assert (results[0].late, results[0].refused) == (2, {"too_many_intercom_pairs": 1})
    screen = LobbyScreen()
    assert observable(restored, screen) == observable(fed, screen)
    assert restored.snapshot() == fed.snapshot()
    assert positions(restored) == [
        (1, ["lm2", "(anonymous)"], ["lm"], 1950.0),
        (2, [], [], 1000.0),
        (3, ["dep"], ["dir"], 1300.0),
        (4, [], [], 1000.0),
        (5, [], ["t9"], 1960.0),
        (6, [], [], 1000.0),
        (7, ["sec", "rm"], [], 1970.0),
    ]
    assert ack_counts(restored) == {
        '_sum from_position="1",to_position="2"': "220.0",
        '_count from_position="1",to_position="2"': "2",
        '_sum from_position="3",to_position="7"': "20.0",
        '_count from_position="3",to_position="7"': "1",
        '_sum from_position="4",to_position="all"': "20.0",
        '_count from_position="4",to_position="all"': "2",
    }
