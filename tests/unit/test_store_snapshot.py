"""Snapshot -> restore continues exactly; anything unusable raises SnapshotError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from branchwatch.contract import events as ev
from branchwatch.contract.messages import DeviceStatus, SpoolStatus, Status
from collector.errors import CollectorError, SnapshotError
from collector.floor.config import FloorConfig
from collector.snapshot import MAGIC
from collector.store import Store
from tests.unit.events import E

CONFIG = FloorConfig(max_counters=4)


def busy_store() -> Store:
    """Every kind of state: queues, pending and finished tickets, gaps, counters, devices."""
    store = Store(CONFIG)
    store.apply_status(
        "r1",
        "b1",
        "a1",
        Status(
            v=1,
            state="online",
            session=4,
            ts=990.0,
            version="1.0",
            devices={
                "q1": DeviceStatus(kind="queue", link="up"),
                "pad": DeviceStatus(kind="pad", link="down"),
            },
            spool=SpoolStatus(depth=3, oldest_ts=980.0),
        ),
        received=991.0,
    )
    store.apply_events(
        "r1",
        "b1",
        "a1",
        [
            E(ev.BranchOpened, 1, 1000.0),
            E(ev.TicketIssued, 2, 1010.0, ticket="A1", service="cash"),
            E(ev.TicketIssued, 3, 1020.0, ticket="A2", service="vip", vip=True),
            E(ev.TicketCalled, 4, 1100.0, ticket="A1", counter="c1"),
            E(ev.ServiceStarted, 5, 1105.0, ticket="A1", counter="c1", teller="t1"),
            E(ev.TicketIssued, 6, 1110.0, ticket="A3", service="cash"),
            E(ev.TicketTransferred, 7, 1120.0, ticket="A3", service="non_cash"),
            E(ev.TicketCalled, 10, 1200.0, ticket="A4", counter="c2"),  # 8, 9 missing: A4's issue
            E(ev.CounterOpened, 11, 1001.0, counter="c1", kind="high", teller="t1"),
            E(ev.CounterPaused, 12, 1150.0, counter="c2"),
            E(ev.EvaluationRequested, 13, 1160.0, counter="c1"),
            E(ev.EvaluationSubmitted, 14, 1161.0, counter="c1", rating="neutral"),
            E(ev.PositionStaffed, 15, 1002.0, position=1, staff="lm"),
            E(ev.PositionStaffed, 16, 1003.0, position=5),
            E(ev.DeviceFault, 17, 1170.0, device="pad", fault="link_down"),
            E(ev.TicketNoShow, 18, 1180.0, ticket="A9"),
        ],
        received=1200.0,
    )
    store.apply_events(
        "r2",
        "b7",
        "a9",
        [
            E(ev.TicketIssued, 100, 500.0, ticket="X1", service="corporate"),
            E(ev.TicketWalkout, 101, 800.0, ticket="X1"),
            E(ev.BranchClosed, 102, 900.0),
        ],
        received=901.0,
    )
    return store


MORE = [
    E(ev.TicketIssued, 9, 1190.0, ticket="A4", service="cash"),  # late: fills the gap
    E(ev.TicketIssued, 8, 1150.0, ticket="A9", service="cash"),  # late: settles the no-show
    E(ev.ServiceEnded, 19, 1300.0, ticket="A1", counter="c1"),
    E(ev.TicketCalled, 20, 1400.0, ticket="A3", counter="c3"),
    E(ev.DeviceRecovered, 21, 1410.0, device="pad", fault="link_down"),
    E(ev.TicketIssued, 18, 1180.0, ticket="A5", service="cash"),  # duplicate seq
]


def observable(store: Store) -> tuple[object, ...]:
    details = [store.branch_detail(r, b, now=2000.0) for r, b in (("r1", "b1"), ("r2", "b7"))]
    return (
        store.render(),
        msgspec.json.encode(store.branch_summaries(now=2000.0)),
        msgspec.json.encode(details),
        store.replay_requests(),
        store.first_missing("r1", "b1", "a1"),
        store.branch_count,
    )


def test_restore_renders_and_views_identically() -> None:
    store = busy_store()
    restored = Store.restore(CONFIG, store.snapshot())
    assert observable(restored) == observable(store)
    assert restored.first_missing("r1", "b1", "a1") == 8


def test_restored_store_continues_exactly() -> None:
    store = busy_store()
    restored = Store.restore(CONFIG, store.snapshot())
    results = [s.apply_events("r1", "b1", "a1", MORE, received=1500.0) for s in (store, restored)]
    assert results[0] == results[1]
    assert (results[0].late, results[0].duplicate) == (2, 1)
    assert observable(restored) == observable(store)
    assert restored.snapshot() == store.snapshot()


def test_an_empty_store_round_trips() -> None:
    restored = Store.restore(CONFIG, Store(CONFIG).snapshot())
    assert (restored.branch_count, restored.render()) == (0, Store(CONFIG).render())


def _tampered(edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = msgspec.msgpack.decode(busy_store().snapshot()[len(MAGIC) :])
    edit(document)
    return MAGIC + msgspec.msgpack.encode(document)


def _r1b1(document: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in document["branches"] if b["branch"] == "b1")


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = _r1b1(document)
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def test_a_tally_lacking_a_name_restores_it_as_zero() -> None:
    """Losses and ratings are tallies with a count for every name: one missing from a
    (tampered) snapshot reads as 0, and the model can never lack one."""

    def edit(document: dict[str, Any]) -> None:
        _set("services.cash.lost", {"walkout": 2})(document)
        _set("counters.c1.ratings", {})(document)

    state = Store.restore(CONFIG, _tampered(edit)).branch_state("r1", "b1")
    assert state is not None
    assert state.services["cash"].lost.as_dict() == {"no_show": 0, "walkout": 2, "closed": 0}
    assert state.counters["c1"].ratings.total() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a branchwatch snapshot"),
        (b'{"format": 1}', "not a branchwatch snapshot"),
        (MAGIC, "corrupt snapshot"),
        (MAGIC + b"\xc1\xc1", "corrupt snapshot"),
        (MAGIC + msgspec.msgpack.encode({"format": 2, "anything": 1}), "format 2 is not supported"),
        (MAGIC + msgspec.msgpack.encode([1, 2, 3]), "corrupt snapshot"),
        (busy_store().snapshot()[:-40], "corrupt snapshot"),
        (_tampered(lambda d: d["branches"].append(d["branches"][0])), "appears twice"),
        (_tampered(_set("services.cash.queue.GHOST", 5.0)), "queue cash holds GHOST"),
        (_tampered(_set("tickets.A2.state", "done")), "queue vip holds A2"),
        (_tampered(_set("tickets.A1.state", "waiting")), "ticket A1 is inconsistent"),
        (_tampered(_set("services.cash.wait.counts", [0])), "histogram of cash has other buckets"),
        (_tampered(_set("counters.c1.state", "melted")), "corrupt snapshot"),
        (_tampered(_set("posts", {})), "other services or posts"),
        (_tampered(_set("agents.a1.last_seq", "ten")), "corrupt snapshot"),
    ],
)
def test_unusable_snapshots_raise_snapshot_error(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message) as caught:
        Store.restore(CONFIG, data)
    assert isinstance(caught.value, CollectorError)


@pytest.mark.parametrize(
    "other",
    [
        FloorConfig(services=("cash", "vip")),
        FloorConfig(wait_buckets=(60.0, 120.0)),
        FloorConfig(service_buckets=(10.0,)),
    ],
)
def test_a_snapshot_of_another_floor_layout_is_refused(other: FloorConfig) -> None:
    with pytest.raises(SnapshotError, match="another floor layout"):
        Store.restore(other, busy_store().snapshot())


def test_caps_are_not_part_of_the_layout() -> None:
    restored = Store.restore(FloorConfig(max_agents=2), busy_store().snapshot())
    assert restored.branch_count == 2


def test_restored_branches_share_the_names_they_repeat() -> None:
    """A decode copies every string; the restore shares those every branch repeats."""
    store = Store(FloorConfig())
    for branch in ("b1", "b2"):
        day = [
            ev.BranchOpened(v=1, seq=1, ts=100.0, device="q"),
            ev.CounterOpened(
                v=1, seq=2, ts=101.0, device="q", counter="c1", kind="high", teller="t1"
            ),
            ev.TicketIssued(v=1, seq=3, ts=110.0, device="q", ticket="A1", service="cash"),
            ev.TicketCalled(v=1, seq=4, ts=120.0, device="q", ticket="A1", counter="c1"),
        ]
        store.apply_events("north", branch, "a", day, received=121.0)
    restored = Store.restore(FloorConfig(), store.snapshot())
    one, two = (restored.branch_state("north", b) for b in ("b1", "b2"))
    assert one is not None and two is not None
    assert one.region is two.region
    assert one.counters["c1"].kind is two.counters["c1"].kind == "high"
    assert one.counters["c1"].teller is two.counters["c1"].teller == "t1"
    tickets = one.tickets["A1"], two.tickets["A1"]
    assert tickets[0].service is tickets[1].service == "cash"
    assert tickets[0].counter is tickets[1].counter == "c1"
