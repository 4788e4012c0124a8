"""Agents and devices: status, the session rule, device up/faults, caps."""

from __future__ import annotations

import pytest

from branchwatch.contract import events as ev
from branchwatch.contract.messages import DeviceStatus, SpoolStatus, Status
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.store import Store
from collector.views import AgentView, DeviceView

QUEUE_UP = {"queue-1": DeviceStatus(kind="queue", link="up")}


def online(
    session: int,
    ts: float | None = 100.0,
    devices: dict[str, DeviceStatus] | None = None,
    version: str | None = None,
    spool: SpoolStatus | None = None,
) -> Status:
    return Status(
        v=1,
        state="online",
        session=session,
        ts=ts,
        devices=QUEUE_UP if devices is None else devices,
        version=version,
        spool=spool,
    )


def offline(session: int) -> Status:
    return Status(v=1, state="offline", session=session)


def agents(store: Store) -> list[AgentView]:
    detail = store.branch_detail("r1", "b1", now=0.0)
    assert detail is not None
    return detail.agents


def devices(store: Store) -> list[DeviceView]:
    detail = store.branch_detail("r1", "b1", now=0.0)
    assert detail is not None
    return detail.devices


def series(store: Store, prefix: str) -> list[str]:
    return [line for line in store.render().splitlines() if line.startswith(prefix)]


def fault(
    store: Store,
    seq: int,
    ts: float,
    name: str,
    *,
    device: str = "queue-1",
    cls: type[ev.Event] = ev.DeviceFault,
) -> None:
    event = cls(v=1, seq=seq, ts=ts, device=device, fault=name)  # type: ignore[call-arg]
    store.apply_events("r1", "b1", "a1", [event], received=ts)


def test_online_status_sets_agent_and_devices() -> None:
    store = Store(FloorConfig())
    spool = SpoolStatus(depth=7, oldest_ts=90.0, dropped=1, refused=4)
    status = online(3, version="1.2.0", spool=spool)
    assert store.apply_status("r1", "b1", "a1", status, received=101.0)
    assert agents(store) == [
        AgentView(
            agent="a1",
            up=True,
            session=3,
            version="1.2.0",
            spool_depth=7,
            last_seen=101.0,  # received, not the status's own time (100.0)
            last_seq=None,
            events_refused=4,
        )
    ]
    assert devices(store) == [
        DeviceView(agent="a1", device="queue-1", kind="queue", up=True, faults=[])
    ]
    assert series(store, "branchwatch_device_up") == [
        'branchwatch_device_up{region="r1",branch="b1",agent="a1",device="queue-1",kind="queue"} 1'
    ]
    assert series(store, "branchwatch_agent_spool_depth") == [
        'branchwatch_agent_spool_depth{region="r1",branch="b1",agent="a1"} 7'
    ]
    assert series(store, "branchwatch_agent_events_refused_total") == [
        'branchwatch_agent_events_refused_total{region="r1",branch="b1",agent="a1"} 4'
    ]


def test_refused_events_follow_the_agents_status_and_survive_a_snapshot() -> None:
    store = Store(FloorConfig())
    refusing = online(3, spool=SpoolStatus(depth=2, refused=3))
    assert store.apply_status("r1", "b1", "a1", refusing, received=101.0)
    more = Status(v=1, state="online", session=3, ts=160.0, spool=SpoolStatus(refused=9))
    assert store.apply_status("r1", "b1", "a1", more, received=161.0)
    assert agents(store)[0].events_refused == 9
    # A will carries no spool: the last count stands.
    assert store.apply_status("r1", "b1", "a1", offline(3), received=170.0)
    restored = Store.restore(FloorConfig(), store.snapshot())
    assert agents(restored)[0].events_refused == 9
    assert series(restored, "branchwatch_agent_events_refused_total") == [
        'branchwatch_agent_events_refused_total{region="r1",branch="b1",agent="a1"} 9'
    ]


def test_offline_marks_the_agent_and_its_devices_down() -> None:
    store = Store(FloorConfig())
    store.apply_status("r1", "b1", "a1", online(3), received=101.0)
    assert store.apply_status("r1", "b1", "a1", offline(3), received=250.0)
    assert series(store, "branchwatch_agent_up") == [
        'branchwatch_agent_up{region="r1",branch="b1",agent="a1"} 0'
    ]
    assert series(store, "branchwatch_device_up")[0].endswith(" 0")
    # a will has no ts: last seen is when it was received
    assert series(store, "branchwatch_agent_last_seen") == [
        'branchwatch_agent_last_seen_timestamp_seconds{region="r1",branch="b1",agent="a1"} 250.0'
    ]


def test_a_late_will_of_an_older_session_is_ignored() -> None:
    store = Store(FloorConfig())
    store.apply_status("r1", "b1", "a1", online(4), received=101.0)
    assert not store.apply_status("r1", "b1", "a1", offline(3), received=102.0)
    assert [(a.up, a.session) for a in agents(store)] == [(True, 4)]
    assert store.apply_status(
        "r1", "b1", "a1", online(5, ts=90.0), received=103.0
    )  # newer session wins
    assert [(a.up, a.session) for a in agents(store)] == [(True, 5)]


def test_an_older_status_within_the_session_is_ignored() -> None:
    store = Store(FloorConfig())
    store.apply_status("r1", "b1", "a1", online(4, ts=200.0), received=201.0)
    stale = online(4, ts=150.0, devices={"queue-1": DeviceStatus(kind="queue", link="down")})
    assert not store.apply_status("r1", "b1", "a1", stale, received=202.0)
    assert [d.up for d in devices(store)] == [True]


def test_device_link_down_and_list_replaced_by_the_next_online_status() -> None:
    store = Store(FloorConfig())
    store.apply_status("r1", "b1", "a1", online(1), received=100.0)
    fault(store, 1, 110.0, "paper_low")
    both = {
        "queue-1": DeviceStatus(kind="queue", link="down"),
        "pad-1": DeviceStatus(kind="pad", link="up"),
    }
    store.apply_status("r1", "b1", "a1", online(1, ts=120.0, devices=both), received=121.0)
    assert [(d.device, d.kind, d.up) for d in devices(store)] == [
        ("pad-1", "pad", True),
        ("queue-1", "queue", False),
    ]
    store.apply_status("r1", "b1", "a1", online(1, ts=130.0, devices={}), received=131.0)
    # queue-1 keeps its fault series but leaves device_up; pad-1 is gone
    assert [(d.device, d.kind, d.up, d.faults) for d in devices(store)] == [
        ("queue-1", None, None, ["paper_low"])
    ]
    assert series(store, "branchwatch_device_up") == []


def test_device_fault_and_recovery_keep_the_series() -> None:
    store = Store(FloorConfig())
    fault(store, 1, 100.0, "paper_out", device="printer")
    line = (
        'branchwatch_device_fault{region="r1",branch="b1",agent="a1",'
        'device="printer",fault="paper_out"}'
    )
    assert series(store, "branchwatch_device_fault") == [f"{line} 1"]
    assert series(store, "branchwatch_device_up") == []  # known from faults only
    fault(store, 2, 200.0, "paper_out", device="printer", cls=ev.DeviceRecovered)
    assert series(store, "branchwatch_device_fault") == [f"{line} 0"]
    fault(store, 3, 150.0, "paper_out", device="printer")  # older than the recovery
    assert series(store, "branchwatch_device_fault") == [f"{line} 0"]
    assert [d.faults for d in devices(store)] == [[]]


def test_last_seen_is_the_latest_receipt_of_events_or_status() -> None:
    store = Store(FloorConfig())
    fault(store, 1, 500.0, "paper_low")
    store.apply_status("r1", "b1", "a1", online(1, ts=400.0), received=401.0)
    assert [a.last_seen for a in agents(store)] == [500.0]
    fault(store, 2, 450.0, "paper_jam")
    assert [(a.last_seen, a.last_seq) for a in agents(store)] == [(500.0, 2)]


def test_agent_cap_refuses_events_and_statuses_of_one_more_agent() -> None:
    store = Store(FloorConfig(max_agents=1))
    store.apply_status("r1", "b1", "a1", online(1), received=100.0)
    event = ev.BranchOpened(v=1, seq=1, ts=100.0, device="x")
    result = store.apply_events(
        "r1", "b1", "a2", [event, ev.BranchClosed(v=1, seq=2, ts=101.0, device="x")], 100.0
    )
    assert (result.applied, result.rejected) == (0, {"too_many_agents": 2})
    assert not store.apply_status("r1", "b1", "a2", online(1), received=100.0)
    assert [a.agent for a in agents(store)] == ["a1"]
    assert store.apply_events("r1", "b2", "a2", [event], 100.0).applied == 1  # per branch


def test_device_cap_refuses_a_status_or_fault_beyond_it() -> None:
    store = Store(FloorConfig(max_devices=2))
    three = {f"d{i}": DeviceStatus(kind="queue", link="up") for i in range(3)}
    assert not store.apply_status("r1", "b1", "a1", online(1, devices=three), received=100.0)
    two = {f"d{i}": DeviceStatus(kind="queue", link="up") for i in range(2)}
    assert store.apply_status("r1", "b1", "a1", online(1, devices=two), received=100.0)
    event = ev.DeviceFault(v=1, seq=1, ts=100.0, device="d9", fault="link_down")
    assert store.apply_events("r1", "b1", "a1", [event], 100.0).rejected == {"too_many_devices": 1}
    assert [d.device for d in devices(store)] == ["d0", "d1"]


def test_fault_labels_per_branch_are_bounded() -> None:
    store = Store(FloorConfig(max_faults=3))
    for i in range(3):
        fault(store, i + 1, 100.0 + i, f"f{i}")
    event = ev.DeviceFault(v=1, seq=4, ts=200.0, device="queue-1", fault="f3")
    assert store.apply_events("r1", "b1", "a1", [event], 200.0).rejected == {"too_many_faults": 1}
    again = ev.DeviceRecovered(v=1, seq=5, ts=201.0, device="queue-1", fault="f0")
    assert store.apply_events("r1", "b1", "a1", [again], 201.0).applied == 1  # a known label
    assert len(series(store, "branchwatch_device_fault")) == 3


def test_device_cap_counts_every_agent_of_the_branch() -> None:
    store = Store(FloorConfig(max_devices=3))
    two = {f"d{i}": DeviceStatus(kind="queue", link="up") for i in range(2)}
    assert store.apply_status("r1", "b1", "a1", online(1, devices=two), received=100.0)
    assert not store.apply_status("r1", "b1", "a2", online(1, devices=two), received=100.0)
    one = {"e0": DeviceStatus(kind="pad", link="up")}
    assert store.apply_status("r1", "b1", "a2", online(1, devices=one), received=100.0)
    # a1 may restate its own two devices: they are not counted twice
    assert store.apply_status("r1", "b1", "a1", online(1, devices=two), received=101.0)


@pytest.mark.parametrize("notices", [False, True])
def test_default_caps_keep_a_branch_within_the_series_budget(notices: bool) -> None:
    config = FloorConfig()
    assert config.worst_case_series(notices=True) <= config.max_series == 375
    store = Store(config, notices=NoticesConfig(enabled=notices))
    noisy = {f"r{n}": n + 1 for n in range(8)}  # 8 reasons a device: 4 x 6 x 8 > the cap
    devices = {f"d{i}": DeviceStatus(kind="pad", link="up", bad_frames=noisy) for i in range(6)}
    for a in range(config.max_agents):
        status = online(1, devices=devices, version="1.0")
        store.apply_status("r1", "b1", f"a{a}", status, received=100.0)
    seq = 0
    for a in range(config.max_agents):
        for i in range(10):
            seq += 1
            events = [
                ev.CounterOpened(
                    v=1, seq=seq, ts=100.0, device="q", counter=f"c{a}-{i}", teller=f"t{a}-{i}"
                ),
                ev.DeviceFault(v=1, seq=seq + 1000, ts=100.0, device=f"d{i % 6}", fault=f"f{i}"),
            ]
            store.apply_events("r1", "b1", f"a{a}", events, 100.0)
    waiting = [  # a waiting ticket per service: the oldest-waiting series exist too
        ev.TicketIssued(v=1, seq=5000 + n, ts=100.0, device="q", ticket=f"T{n}", service=s)
        for n, s in enumerate(config.services)
    ]
    # Opened with posts 1 and 2 empty and no intercom: both notice chains end unanswered.
    opened = ev.BranchOpened(v=1, seq=4999, ts=100.0, device="q")
    # Every service pair transferred and every post calling all: past their caps too.
    pairs = [(s, t) for s in config.services for t in config.services if s != t]
    moved = [
        event
        for n, (s, t) in enumerate(pairs)
        for event in (
            ev.TicketIssued(v=1, seq=6000 + 2 * n, ts=100.0, device="q", ticket=f"X{n}", service=s),
            ev.TicketTransferred(
                v=1, seq=6001 + 2 * n, ts=100.0, device="q", ticket=f"X{n}", service=t
            ),
        )
    ]
    calls = [
        ev.IntercomCall(v=1, seq=7000 + p, ts=100.0, device="q", from_position=p, reason="assist")
        for p in (post.position for post in config.posts)
    ]
    store.apply_events("r1", "b1", "a0", [opened, *waiting, *moved, *calls], 100.0)
    store.due_notices(1000.0)
    lines = [line for line in store.render().splitlines() if not line.startswith("#")]
    # every cap reached, and no more
    assert len(lines) == config.worst_case_series(notices=notices)


@pytest.mark.parametrize("state", ["online", "offline"])
def test_status_of_a_new_agent_creates_it(state: str) -> None:
    store = Store(FloorConfig())
    status = online(2) if state == "online" else offline(2)
    assert store.apply_status("r1", "b1", "a1", status, received=50.0)
    assert [(a.agent, a.up, a.session) for a in agents(store)] == [("a1", state == "online", 2)]


# -- agent health: up from events, version, bad frames ------------------------------------

UP = 'branchwatch_agent_up{region="r1",branch="b1",agent="a1"}'


def opened(seq: int, ts: float = 100.0) -> list[ev.Event]:
    return [ev.BranchOpened(v=1, seq=seq, ts=ts, device="queue-1")]


def test_an_agent_that_sends_events_is_up_until_its_offline_status() -> None:
    store = Store(FloorConfig())
    store.apply_events("r1", "b1", "a1", opened(1), received=100.0)
    assert series(store, "branchwatch_agent_up") == [f"{UP} 1"]  # never sent a status
    assert store.apply_status("r1", "b1", "a1", offline(7), received=110.0)  # its will
    assert series(store, "branchwatch_agent_up") == [f"{UP} 0"]
    store.apply_events("r1", "b1", "a1", opened(1), received=115.0)  # a duplicate: no news
    assert series(store, "branchwatch_agent_up") == [f"{UP} 0"]
    store.apply_events("r1", "b1", "a1", opened(2), received=120.0)  # it is back
    assert series(store, "branchwatch_agent_up") == [f"{UP} 1"]
    assert not store.apply_status("r1", "b1", "a1", offline(6), received=130.0)  # older session
    assert series(store, "branchwatch_agent_up") == [f"{UP} 1"]
    store.apply_status("r1", "b1", "a1", offline(7), received=140.0)
    store.apply_status("r1", "b1", "a1", online(8), received=150.0)
    assert series(store, "branchwatch_agent_up") == [f"{UP} 1"]


def test_agent_info_carries_the_version_of_its_latest_status() -> None:
    store = Store(FloorConfig())
    store.apply_events("r1", "b1", "a1", opened(1), received=100.0)
    assert series(store, "branchwatch_agent_info") == []  # no status: no version known
    store.apply_status("r1", "b1", "a1", online(1, version="0.1.0"), received=101.0)
    store.apply_status("r1", "b1", "a2", online(1, version='odd "v"\\2'), received=101.0)
    assert series(store, "branchwatch_agent_info") == [
        'branchwatch_agent_info{region="r1",branch="b1",agent="a1",version="0.1.0"} 1',
        'branchwatch_agent_info{region="r1",branch="b1",agent="a2",version="odd \\"v\\"\\\\2"} 1',
    ]
    store.apply_status("r1", "b1", "a1", online(2, version="0.2.0"), received=102.0)
    store.apply_status("r1", "b1", "a1", offline(2), received=103.0)  # a will names none
    assert series(store, "branchwatch_agent_info")[0].endswith('version="0.2.0"} 1')


def bad(kind: str = "queue", **counts: int) -> DeviceStatus:
    return DeviceStatus(kind=kind, link="up", bad_frames=counts)


def bad_frames(store: Store) -> dict[tuple[str, str, str], float]:
    out = {}
    for line in series(store, "branchwatch_agent_bad_frames_total"):
        labels, value = line.rsplit(" ", 1)
        agent, device, reason = (part.split('"')[1] for part in labels.split(",")[2:])
        out[(agent, device, reason)] = float(value)
    return out


def test_bad_frames_of_each_device_are_counters_from_the_status() -> None:
    store = Store(FloorConfig())
    status = online(1, devices={"queue-1": bad(bad_args=2), "pad-1": bad("pad")})
    store.apply_status("r1", "b1", "a1", status, received=100.0)
    assert bad_frames(store) == {("a1", "queue-1", "bad_args"): 2}
    later = {"queue-1": bad(bad_args=5, unknown_verb=1), "pad-1": bad("pad", bad_checksum=3)}
    store.apply_status("r1", "b1", "a1", online(1, ts=160.0, devices=later), received=161.0)
    assert bad_frames(store) == {
        ("a1", "pad-1", "bad_checksum"): 3,
        ("a1", "queue-1", "bad_args"): 5,
        ("a1", "queue-1", "unknown_verb"): 1,
    }
    assert [(d.device, d.bad_frames) for d in devices(store)] == [
        ("pad-1", {"bad_checksum": 3}),
        ("queue-1", {"bad_args": 5, "unknown_verb": 1}),
    ]
    store.apply_status("r1", "b1", "a1", offline(1), received=170.0)
    assert len(bad_frames(store)) == 3  # the last totals stay while the agent is away
    # Restarted: its totals start again from 0 (a counter reset), pad-1 is gone.
    store.apply_status("r1", "b1", "a1", online(2, ts=200.0, devices={"queue-1": bad()}), 201.0)
    assert bad_frames(store) == {}


def test_bad_frame_series_are_capped_per_branch_and_refusals_counted() -> None:
    store = Store(FloorConfig(max_bad_frame_series=3))
    refused: dict[str, int] = {}
    first = online(1, devices={"queue-1": bad(b=1, a=1)})
    assert store.apply_status("r1", "b1", "a1", first, received=100.0, refused=refused)
    second = online(1, devices={"pad-1": bad("pad", z=1, y=1)})
    assert store.apply_status("r1", "b1", "a2", second, received=100.0, refused=refused)
    assert refused == {"too_many_bad_frame_series": 1}
    assert set(bad_frames(store)) == {
        ("a1", "queue-1", "a"),
        ("a1", "queue-1", "b"),
        ("a2", "pad-1", "y"),  # in name order, as long as there is room
    }
    assert [d.bad_frames_refused for d in devices(store)] == [0, 1]
    # An exported reason keeps its series (a counter never moves), a new one waits for room.
    again = online(1, ts=101.0, devices={"queue-1": bad(c=1, b=2)})
    store.apply_status("r1", "b1", "a1", again, received=101.0, refused=refused)
    assert set(bad_frames(store)) == {
        ("a1", "queue-1", "b"),
        ("a1", "queue-1", "c"),
        ("a2", "pad-1", "y"),
    }
    assert refused == {"too_many_bad_frame_series": 1}
    assert len(store.render().splitlines()) <= FloorConfig().worst_case_series()


def test_refused_statuses_are_counted_by_reason() -> None:
    store = Store(FloorConfig(max_agents=1, max_devices=1))
    refused: dict[str, int] = {}
    two = {"d1": bad(), "d2": bad()}
    assert not store.apply_status("r1", "b1", "a1", online(1, devices=two), 100.0, refused)
    store.apply_status("r1", "b1", "a1", online(1), received=100.0, refused=refused)
    assert not store.apply_status("r1", "b1", "a2", online(1), 100.0, refused)
    assert refused == {"too_many_devices": 1, "too_many_agents": 1}


def test_last_seen_is_when_received_so_a_clock_set_back_does_not_silence_an_agent() -> None:
    store = Store(FloorConfig())
    fault(store, 1, 5000.0, "paper_low")
    # The branch PC's clock goes back an hour: events keep coming, stamped earlier.
    event = ev.DeviceRecovered(v=1, seq=2, ts=1400.0, device="queue-1", fault="paper_low")
    store.apply_events("r1", "b1", "a1", [event], received=5060.0)
    assert [view.last_seen for view in agents(store)] == [5060.0]
    # A message of duplicates only is not news: the agent is not seen by it.
    store.apply_events("r1", "b1", "a1", [event], received=5120.0)
    assert [view.last_seen for view in agents(store)] == [5060.0]
