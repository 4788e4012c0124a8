"""Notice ids: made of the branch's events only, so both collectors of an HA pair name a
notice alike (the agent delivers an id once), and never one id for two notices.

The two twins here are two stores fed the same events, whose ticks fall at different
moments (as two collectors' clocks do): every notice must carry the same id in both.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from branchwatch.contract import events as ev
from branchwatch.contract.ids import LOCAL_ID_PATTERN
from collector.notices.book import notice_id
from collector.notices.state import Episode, Notice, NoticeBook, NoticeKind
from collector.snapshot import MAGIC
from collector.store import Store
from tests.unit.test_notices_engine import (
    DEFAULT_STAFF,
    NOTICES,
    START,
    Floor,
    floor_with_post_1_empty,
)


class Twins:
    """Two collectors of a pair: the same events, ticks at their own moments."""

    def __init__(self) -> None:
        self.a = Floor()
        self.b = Floor()

    def __call__(self, cls: type[ev.Event], agent: str = "a1", **fields: Any) -> None:
        event = self.a.event(cls, agent, **fields)
        self.b.seq = dict(self.a.seq)
        for twin in (self.a, self.b):
            twin.send(event, agent=agent)

    def at(self, when: float) -> None:
        """Both clocks to ``when``: twin a ticks every 0.5 s, twin b every 0.3 s."""
        self.a.until(when, step=0.5)
        self.b.until(when, step=0.3)
        self.b.now = self.a.now = when

    def sent(self, twin: Floor) -> list[tuple[int, str]]:
        return [(o.notify.position, o.notify.id) for o in twin.sent]


def test_twins_name_every_notice_of_a_day_alike() -> None:
    pair = Twins()
    pair(ev.BranchOpened)
    for position, staff, agent in (*DEFAULT_STAFF, (7, "rm", "a2")):
        pair(ev.PositionStaffed, agent, position=position, staff=staff)
    pair(ev.CounterOpened, counter="c1", kind="high")
    # Post 1 empty: post 3, post 4; post 4 acks, is told again, then post 7 and the all-call.
    pair.at(START + 10)
    pair(ev.PositionVacated, position=1)
    pair.at(START + 135)
    [_, (_, to_4)] = pair.sent(pair.a)
    pair(ev.IntercomAck, position=4, notice=to_4)
    pair.at(START + 420)
    pair(ev.PositionStaffed, position=1, staff="lm")
    # Emptied again: a new episode, new ids.
    pair.at(START + 500)
    pair(ev.PositionVacated, position=1)
    pair.at(START + 565)
    pair(ev.PositionStaffed, position=1, staff="lm")
    # An unsatisfied customer, then a queue long, short again, long again (same oldest).
    pair.at(START + 600)
    pair(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied")
    pair.at(START + 700)
    for n in range(9):
        pair(ev.TicketIssued, ticket=f"A{n}", service="cash")
    pair.at(START + 710)
    pair(ev.TicketCalled, ticket="A8", counter="c1")  # 8 left: short; A0 still the oldest
    pair.at(START + 720)
    pair(ev.TicketIssued, ticket="A9", service="cash")
    pair.at(START + 1400)

    sent = pair.sent(pair.a)
    assert sent == pair.sent(pair.b)
    ids = [notice for _, notice in sent]
    assert len(ids) == len(set(ids)), sent  # never one id for two notices
    assert all(re.match(LOCAL_ID_PATTERN, notice) for notice in ids)
    assert [position for position, _ in sent] == [3, 4, 4, 7, 2, 7, 3, 3, 3, 3]
    assert ids[:4] == ["e1-1010000-3", "e1-1010000-4", "e1-1010000-4.1", "e1-1010000-7"]
    assert ids[6] == "e1-1500000-3"  # the post emptied again
    assert ids[7] == "u-1600000-3"
    assert ids[8:] == ["q-1700000-3", "q-1700000-3.1"]  # long again, the same oldest ticket


def test_the_twins_send_at_their_own_moments_under_one_name() -> None:
    pair = Twins()
    pair(ev.BranchOpened)
    for position, staff, agent in DEFAULT_STAFF:
        pair(ev.PositionStaffed, agent, position=position, staff=staff)
    pair.at(START + 10)
    pair(ev.PositionVacated, position=1)
    pair.at(START + 71)
    [a] = [o.notify for o in pair.a.sent]
    [b] = [o.notify for o in pair.b.sent]
    assert a == b
    sent_at = [
        [n.sent_ts for e in twin.store.notices_of("r1", "b1") or [] for n in e.notices]
        for twin in (pair.a, pair.b)
    ]
    assert sent_at == [[START + 70], [pytest.approx(START + 70.3)]]  # each twin's own tick
    # The agent's ack naming that id closes the step in both.
    pair(ev.IntercomAck, position=3, notice=a.id)
    assert pair.a.total("post_empty", "acked") == pair.b.total("post_empty", "acked") == 1


def test_a_notice_the_crash_forgot_is_sent_again_under_its_own_id() -> None:
    # The same notice (same episode, step and post): the agent takes it for a repeat.
    floor = floor_with_post_1_empty()
    snapshot = floor.store.snapshot()  # before any notice
    [first] = floor.until(START + 70)
    floor.store = Store.restore(floor.floor, snapshot, notices=NOTICES)
    [again] = floor.until(START + 71)
    assert (again.notify.position, again.notify.id) == (3, first.notify.id)
    [next_step] = floor.until(START + 131)
    assert (next_step.notify.position, next_step.notify.id) == (4, "e1-1010000-4")


def test_a_restore_and_replay_never_reissue_an_id_for_a_new_notice() -> None:
    floor = floor_with_post_1_empty()
    snapshot = floor.store.snapshot()  # before any notice
    before = floor.until(START + 130)  # post 3, then post 4
    floor.now = START + 140
    events = [floor.event(ev.PositionStaffed, position=1, staff="lm")]
    floor.now = START + 150
    events.append(floor.event(ev.PositionVacated, position=1))
    floor.send(*events)
    before += floor.until(START + 210)  # the new episode's first notice
    # The collector dies; the older snapshot comes back and the agent replays.
    document = msgspec.msgpack.decode(snapshot[len(MAGIC) :])
    document["branches"][0]["notices"]["next_id"] = 7  # an older version's counter
    old = MAGIC + msgspec.msgpack.encode(document)
    floor.store = Store.restore(floor.floor, old, notices=NOTICES)
    floor.sent = []
    floor.now = START + 215
    floor.send(*events)
    after = floor.until(START + 400)
    names = {(o.notify.position, o.notify.id) for o in before}
    assert [(o.notify.position, o.notify.id) for o in after][:1] == [(3, "e1-1150000-3")]
    assert (3, "e1-1150000-3") in names  # the same notice as before the crash
    old_episode = {o.notify.id for o in before if o.notify.id.startswith("e1-1010000-")}
    assert not old_episode & {o.notify.id for o in after}


@pytest.mark.parametrize(
    ("kind", "origin", "position", "expected"),
    [
        ("post_empty", 4_102_444_800.0, 99, "e99-4102444800000-99"),
        ("unsatisfied", 1764054000.1235, 3, "u-1764054000124-3"),
        ("queue_long", 0.0, 1, "q-0-1"),
    ],
)
def test_an_id_names_kind_subject_time_and_post_within_the_contract(
    kind: NoticeKind, origin: float, position: int, expected: str
) -> None:
    episode = Episode(kind=kind, since=origin, position=99 if kind == "post_empty" else None)
    book = NoticeBook(open=[episode])
    name = notice_id(book, episode, position)
    assert name == expected
    for n in range(1, 12):
        episode.notices.append(Notice(id=name, position=position, agent="a1", sent_ts=0.0))
        name = notice_id(book, episode, position)
        assert name == f"{expected}.{n}"
    assert re.match(LOCAL_ID_PATTERN, name) and len(name) <= 32


def test_the_next_suffix_follows_the_highest_held_not_the_count() -> None:
    # An ended episode that used the base and ".1" was forgotten; ".2" is still held.
    episode = Episode(kind="queue_long", since=5.0, origin=1.0)
    held = Notice(id="q-1000-3.2", position=3, agent="a1", sent_ts=5.0)
    other = Notice(id="q-1000-31", position=31, agent="a1", sent_ts=5.0)  # not the same base
    book = NoticeBook(open=[Episode(kind="queue_long", since=4.0, notices=[held, other])])
    book.open.append(episode)
    assert notice_id(book, episode, 3) == "q-1000-3.3"
    assert notice_id(book, episode, 31) == "q-1000-31.1"
