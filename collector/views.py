"""JSON views of the floor for the HTTP API and the terminal view (field names are stable)."""

from __future__ import annotations

import msgspec

from branchwatch.contract.ids import RATINGS
from collector.dayviews import (
    DayServiceView,
    DayView,
    TellerView,
    day_services_view,
    day_view,
    ratio,
    satisfaction,
    tellers_view,
)
from collector.floor.agents import rebuilding
from collector.floor.branch import COUNTER_STATES, BranchState, CounterState
from collector.floor.config import FloorRules
from collector.notices.view import EpisodeView, notices_view


class PositionView(msgspec.Struct):
    position: int
    name: str
    staff: list[str]
    staffed: int
    since: float  # when last staffed or vacated (or the branch opened while it was empty)
    required: bool
    last_staff: list[str]  # who left at the last vacate (empty if nobody is known)


class AgentView(msgspec.Struct):
    agent: str
    up: bool
    session: int | None
    version: str | None
    spool_depth: int
    last_seen: float
    last_seq: int | None
    # Its events are held until its replay is in (the collector had no seq of it).
    rebuilding: bool = False
    events_missing: int = 0  # seqs skipped by a gap, not received yet (asked for again)
    events_lost: int = 0  # missing seqs given up: the agent no longer holds them
    # New spools the agent began (its old one lost: corrupt, a new disk) and the newest's
    # first seq; the old spool's missing seqs are then lost.
    spools_started: int = 0
    spool_first_seq: int | None = None
    events_refused: int = 0  # events its spool could not store (disk full), its status says


class DeviceView(msgspec.Struct):
    agent: str
    device: str
    kind: str | None  # None: known from fault events only (not in the agent's status)
    up: bool | None  # None: not in the agent's status
    faults: list[str]  # active faults
    # Bad frames by reason since the agent started (its latest status), as exported.
    bad_frames: dict[str, int] = msgspec.field(default_factory=dict)
    bad_frames_refused: int = 0  # reasons of that status not exported (the series cap)


class BranchSummary(msgspec.Struct, kw_only=True):
    region: str
    branch: str
    open: bool
    opened_ts: float | None
    last_event_ts: float | None
    waiting_total: int
    waiting: dict[str, int]
    oldest_wait_since: float | None
    longest_wait_seconds: float | None
    positions: list[PositionView]
    empty_required: list[int]
    counters: dict[str, int]
    issued_total: int
    served_total: int
    lost_total: int
    ratings: dict[str, int]
    satisfaction: float | None
    evaluation_rate: float | None
    agents: list[AgentView]
    devices: list[DeviceView]
    # The current business day's figures (collector/dayviews.py); None until the
    # collector has seen the branch open. The *_total fields above are running totals.
    today: DayView | None = None
    # An agent of the branch is being rebuilt from its replay: the figures are not
    # complete yet (its events are applied once the replay is in).
    rebuilding: bool = False


class TicketView(msgspec.Struct):
    ticket: str
    service: str | None  # None: only later events of the ticket are known so far
    state: str
    vip: bool
    wait_since: float | None
    counter: str | None


class CounterView(msgspec.Struct):
    counter: str
    state: str | None  # None: known from evaluation events only
    kind: str | None
    teller: str | None
    since: float | None


class ServiceStats(msgspec.Struct):
    """Running totals since the collector started (or its snapshot), not a day's:
    the business day's are in the detail's ``today_services``."""

    service: str
    waiting: int
    issued: int
    served: int
    lost: dict[str, int]
    wait_count: int
    wait_sum: float
    avg_wait: float | None


class CounterEvaluations(msgspec.Struct):
    counter: str
    requested: int
    ratings: dict[str, int]
    expired: int
    satisfaction: float | None
    evaluation_rate: float | None


class BranchDetail(BranchSummary, kw_only=True):
    tickets: list[TicketView]
    counter_list: list[CounterView]
    services: list[ServiceStats]
    evaluations: list[CounterEvaluations]
    # The open floor notice episodes, each with its chain (who was told when, who
    # acknowledged); empty while none is open or notices are off.
    notices: list[EpisodeView]
    # The business day per service, and the tellers' totals as exported.
    today_services: list[DayServiceView] = msgspec.field(default_factory=list)
    tellers: list[TellerView] = msgspec.field(default_factory=list)
    # Intercom acks of this branch that acknowledged no notice, by reason (only reasons
    # seen): the metric sums them over every branch.
    acks_ignored: dict[str, int] = msgspec.field(default_factory=dict)


def summarize(rules: FloorRules, b: BranchState, now: float) -> BranchSummary:
    waiting = {name: len(stats.queue) for name, stats in b.services.items()}
    oldest = min(
        (min(stats.queue.values()) for stats in b.services.values() if stats.queue), default=None
    )
    positions = [
        PositionView(
            position=n,
            name=rules.post_names[n],
            staff=list(post.staff),
            staffed=len(post.staff),
            since=post.changed_ts,
            required=n in rules.required_posts,
            last_staff=list(post.last_staff),
        )
        for n, post in b.posts.items()
    ]
    counters: dict[str, int] = dict.fromkeys(COUNTER_STATES, 0)
    ratings: dict[str, int] = dict.fromkeys(RATINGS, 0)
    requested = 0
    for counter in b.counters.values():
        if counter.state is not None:
            counters[counter.state] += 1
        for rating, count in zip(RATINGS, counter.ratings.counts(), strict=True):
            ratings[rating] += count
        requested += counter.requested
    return BranchSummary(
        region=b.region,
        branch=b.branch,
        open=b.open,
        opened_ts=b.opened_ts,
        last_event_ts=b.last_event_ts,
        waiting_total=sum(waiting.values()),
        waiting=waiting,
        oldest_wait_since=oldest,
        longest_wait_seconds=None if oldest is None else max(0.0, now - oldest),
        positions=positions,
        empty_required=[p.position for p in positions if p.required and not p.staffed],
        counters=counters,
        issued_total=sum(s.issued for s in b.services.values()),
        served_total=sum(s.served for s in b.services.values()),
        lost_total=sum(s.lost.total() for s in b.services.values()),
        ratings=ratings,
        satisfaction=satisfaction(ratings),
        evaluation_rate=ratio(sum(ratings.values()), requested),
        agents=_agents(b),
        devices=_devices(b),
        today=day_view(b.today),
        rebuilding=rebuilding(b),
    )


def _agents(b: BranchState) -> list[AgentView]:
    return [
        AgentView(
            agent=name,
            up=agent.up,
            session=agent.session,
            version=agent.version,
            spool_depth=agent.spool_depth,
            last_seen=agent.last_seen,
            last_seq=agent.last_seq,
            rebuilding=agent.rebuilding,
            events_missing=len(agent.missing),
            events_lost=agent.events_lost,
            spools_started=agent.spools_started,
            spool_first_seq=agent.spool_first_seq,
            events_refused=agent.events_refused,
        )
        for name, agent in sorted(b.agents.items())
    ]


def _devices(b: BranchState) -> list[DeviceView]:
    views = []
    for agent_id, agent in sorted(b.agents.items()):
        for device_id, device in sorted(agent.devices.items()):
            listed = device.kind is not None
            views.append(
                DeviceView(
                    agent=agent_id,
                    device=device_id,
                    kind=device.kind,
                    up=(agent.up and device.link == "up") if listed else None,
                    faults=sorted(f for f, state in device.faults.items() if state.active),
                    bad_frames=dict(sorted(device.bad_frames.items())),
                    bad_frames_refused=device.bad_frames_refused,
                )
            )
    return views


def detail(rules: FloorRules, b: BranchState, now: float) -> BranchDetail:
    summary = summarize(rules, b, now)
    tickets = [
        TicketView(
            ticket=ticket_id,
            service=t.service,
            state=t.state,
            vip=t.vip,
            wait_since=t.wait_since,
            counter=t.counter,
        )
        for ticket_id, t in sorted(
            b.tickets.items(),
            key=lambda item: (item[1].wait_since is None, item[1].wait_since or 0.0, item[0]),
        )
    ]
    services = [
        ServiceStats(
            service=name,
            waiting=len(s.queue),
            issued=s.issued,
            served=s.served,
            lost=s.lost.as_dict(),
            wait_count=s.wait.count,
            wait_sum=s.wait.sum,
            avg_wait=ratio(s.wait.sum, s.wait.count),
        )
        for name, s in b.services.items()
    ]
    counters = sorted(b.counters.items())
    return BranchDetail(
        **msgspec.structs.asdict(summary),
        tickets=tickets,
        counter_list=[
            CounterView(counter=c, state=s.state, kind=s.kind, teller=s.teller, since=s.since)
            for c, s in counters
        ],
        services=services,
        evaluations=[_evaluations(c, s) for c, s in counters],
        notices=notices_view(b.notices),
        today_services=day_services_view(b.today),
        tellers=tellers_view(b.tellers),
        acks_ignored=dict(sorted(b.notices.ignored_acks.items())),
    )


def _evaluations(counter_id: str, counter: CounterState) -> CounterEvaluations:
    ratings = counter.ratings.as_dict()
    return CounterEvaluations(
        counter=counter_id,
        requested=counter.requested,
        ratings=ratings,
        expired=counter.expired,
        satisfaction=satisfaction(ratings),
        evaluation_rate=ratio(counter.ratings.total(), counter.requested),
    )
