"""The floor loop's effect: ``python -m bench.floor_loop`` (also run by ``make bench``).

Part 1, in-process: N simulated branches for one business day, floor notices off
and on, same seed. The simulator's branch models run on a simulated clock; their
events go into a real :class:`collector.store.Store`; every simulated 0.5 s the
store's due notices are delivered back to the branches' staff, who answer as the
simulator's profiles say. On the resulting series it evaluates:

- post 1 empty (while open): minutes per branch-day, episodes over 2 minutes;
- on-call pages per branch-day, once per post-1 episode: the backstop
  ``BranchwatchGreeterPostEmpty`` (empty for ``greeter_empty_seconds`` + its
  ``for:``; 120 s with notices off, the longer backstop with notices on, as
  ``thresholds_from_tables`` decides) or ``BranchwatchFloorNoticeUnanswered``
  (post 1 empty while a post-empty chain is exhausted, for its ``for:``);
- notice → ack latency, unsatisfied ratings followed up within 5 minutes.

Part 2 (:mod:`bench.floor_latency`): threshold → ``NOTE`` line on the intercom's
pty through a real Mosquitto, collector and agent.

Targets of issue 8: pages per branch-day down >= 90 %, post-1 empty minutes down
>= 50 %, notice sent <= 2 s after the threshold (p99). Exits 1 if one is missed.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from alerts.config import DEFAULT as ALERTS
from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    EvaluationSubmitted,
    Event,
    IntercomAck,
    PositionStaffed,
    PositionVacated,
)
from branchwatch.sim import BranchSim, make_branches
from branchwatch.sim.profile import MINUTE, POST_GREETER, SCENARIOS
from branchwatch.thresholds import Thresholds, thresholds_from_tables
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.store import Store

TICK: Final = 0.5  # simulated seconds between due_notices() calls
LONG_EPISODE: Final = 2 * MINUTE
FOLLOW_UP_WITHIN: Final = 5 * MINUTE
PAGES_DOWN_TARGET: Final = 0.90
EMPTY_DOWN_TARGET: Final = 0.50
SENT_AFTER_TARGET: Final = 2.0  # seconds, p99


@dataclass
class Spell:
    """Post 1 empty while the branch is open, from one vacate to the next check-in."""

    start: float
    end: float | None = None
    exhausted: bool = False  # a post-empty chain was unanswered during it
    unanswered_from: float | None = None  # the unanswered condition holds since
    paged_unanswered: bool = False

    def length(self) -> float:
        assert self.end is not None
        return self.end - self.start


@dataclass
class Watch:
    """What one branch's events say about post 1, its ratings and the acks."""

    branch: str
    open: bool = False
    done: bool = False  # the day is over: the branch is no longer advanced
    post1: set[str] = field(default_factory=set)
    spell: Spell | None = None
    spells: list[Spell] = field(default_factory=list)
    unsatisfied: list[tuple[float, str]] = field(default_factory=list)  # (ts, branch/ticket)

    def see(self, event: Event, acks: dict[str, float]) -> None:
        if isinstance(event, BranchOpened):
            self.open = True
            self._maybe_empty(event.ts)
        elif isinstance(event, BranchClosed):
            self._end(event.ts)
            self.open = False
            self.done = True
        elif isinstance(event, PositionStaffed) and event.position == POST_GREETER:
            self.post1.add(event.staff or "")
            self._end(event.ts)
        elif isinstance(event, PositionVacated) and event.position == POST_GREETER:
            self.post1.discard(event.staff or "")
            self._maybe_empty(event.ts)
        elif isinstance(event, IntercomAck) and event.notice is not None:
            acks.setdefault(event.notice, event.ts)
        elif (
            isinstance(event, EvaluationSubmitted)
            and event.rating == "unsatisfied"
            and self.open
            and event.ticket is not None
        ):
            self.unsatisfied.append((event.ts, f"{self.branch}/{event.ticket}"))

    def _maybe_empty(self, ts: float) -> None:
        if self.open and not self.post1 and self.spell is None:
            self.spell = Spell(ts)

    def _end(self, ts: float) -> None:
        if self.spell is not None:
            self.spell.end = ts
            self.spells.append(self.spell)
            self.spell = None


@dataclass(frozen=True)
class Sent:
    """A notice the store sent, and what its episode is about."""

    kind: str
    ts: float
    ticket: str | None = None  # unsatisfied: "branch/ticket" rated
    after_threshold: float | None = None  # a post's first notice: seconds past the threshold


@dataclass
class Day:
    """One run: the branches' watches and the notices sent."""

    branches: int
    thresholds: Thresholds
    watches: list[Watch]
    sent: dict[str, Sent]
    acks: dict[str, float]
    seconds: float  # wall time the run took

    def sent_after_threshold(self) -> list[float]:
        return sorted(
            s.after_threshold for s in self.sent.values() if s.after_threshold is not None
        )

    def spells(self) -> list[Spell]:
        return [s for w in self.watches for s in w.spells]

    def per_day(self, count: float) -> float:
        return count / self.branches

    def empty_minutes(self, shorter_than: float | None = None) -> float:
        """Post 1 empty while open, per branch-day; only spells under ``shorter_than``."""
        lengths = [s.length() for s in self.spells()]
        if shorter_than is not None:
            lengths = [length for length in lengths if length < shorter_than]
        return self.per_day(sum(lengths) / MINUTE)

    def long_episodes(self) -> float:
        return self.per_day(sum(1 for s in self.spells() if s.length() > LONG_EPISODE))

    def backstop(self, spell: Spell) -> bool:
        return spell.length() >= self.thresholds.greeter_empty_seconds + ALERTS.post_for_seconds

    def pages(self) -> float:
        return self.per_day(sum(1 for s in self.spells() if self.backstop(s) or s.paged_unanswered))

    def exhausted(self) -> int:
        return sum(1 for s in self.spells() if s.exhausted)

    def ack_seconds(self, kind: str | None = None) -> list[float]:
        return sorted(
            self.acks[notice] - sent.ts
            for notice, sent in self.sent.items()
            if notice in self.acks and (kind is None or sent.kind == kind)
        )

    def followed_up(self) -> tuple[int, int]:
        """(unsatisfied ratings, of them acknowledged by a follow-up within 5 minutes)."""
        acked = {
            sent.ticket: self.acks[notice]
            for notice, sent in self.sent.items()
            if sent.kind == "unsatisfied" and notice in self.acks
        }
        ratings = [r for w in self.watches for r in w.unsatisfied]
        quick = sum(
            1
            for ts, ticket in ratings
            if ticket in acked and acked[ticket] - ts <= FOLLOW_UP_WITHIN
        )
        return len(ratings), quick


def simulate_day(
    branches: int, seed: int, scenario: str, notices: NoticesConfig | None, tick: float = TICK
) -> Day:
    """One business day of ``branches`` branches, fed through a real store."""
    tables: dict[str, Any] = {"notices": {"enabled": notices is not None}}
    thresholds = thresholds_from_tables(tables)
    store = Store(FloorConfig(), thresholds=thresholds, notices=notices)
    sims = make_branches(branches, seed, scenario=scenario)
    watches = [Watch(sim.branch) for sim in sims]
    index = {(sim.region, sim.branch): i for i, sim in enumerate(sims)}
    sent: dict[str, Sent] = {}
    acks: dict[str, float] = {}
    unanswered_for = ALERTS.notice_unanswered_for_seconds
    agenda = [(at, i) for i, sim in enumerate(sims) if (at := sim.next_action_at) is not None]
    heapq.heapify(agenda)
    empty: set[int] = set()  # branches whose post 1 is empty now
    began = time.perf_counter()
    t = sims[0].now
    while agenda:  # a branch leaves it when its day is over
        t += tick
        ts = sims[0].ts_at(t)
        while agenda and agenda[0][0] <= t:
            _, i = heapq.heappop(agenda)
            _feed(sims[i], watches[i], store, t, ts, acks)
            if (at := sims[i].next_action_at) is not None and not watches[i].done:
                heapq.heappush(agenda, (at, i))
            (empty.add if watches[i].spell is not None else empty.discard)(i)
        for outbound in store.due_notices(ts):
            i = index[(outbound.region, outbound.branch)]
            notify = outbound.notify
            sent[notify.id] = _about(store, sims[i], notify.id, ts, notices)
            sims[i].advance(t)  # its clock to now: the staff's answer is timed from here
            sims[i].receive_notice(notify.id, notify.position, notify.text)
            if (at := sims[i].next_action_at) is not None:
                heapq.heappush(agenda, (at, i))
        if notices is not None:
            for i in empty:
                spell = watches[i].spell
                if spell is not None and ts - spell.start >= notices.post_empty_seconds:
                    _check_unanswered(store, sims[i], spell, ts, unanswered_for)
    return Day(branches, thresholds, watches, sent, acks, time.perf_counter() - began)


def _feed(
    sim: BranchSim, watch: Watch, store: Store, t: float, ts: float, acks: dict[str, float]
) -> None:
    """Advance one branch to ``t``; its events into the store and its watch."""
    if watch.done:
        return
    events = sim.advance(t)
    if events:
        store.apply_events(sim.region, sim.branch, sim.agent, events, ts)
        for event in events:
            watch.see(event, acks)


def _about(
    store: Store, sim: BranchSim, notice: str, ts: float, notices: NoticesConfig | None
) -> Sent:
    """What a notice just sent is about, from the store's open episodes."""
    for episode in store.notices_of(sim.region, sim.branch) or []:
        if not any(told.id == notice for told in episode.notices):
            continue
        after = None
        if episode.kind == "post_empty" and len(episode.notices) == 1 and notices is not None:
            after = ts - (episode.since + notices.post_empty_seconds)
        ticket = None if episode.ticket is None else f"{sim.branch}/{episode.ticket}"
        return Sent(episode.kind, ts, ticket, after)
    return Sent("unknown", ts)


def _check_unanswered(
    store: Store, sim: BranchSim, spell: Spell, ts: float, for_seconds: float
) -> None:
    """BranchwatchFloorNoticeUnanswered's condition while post 1 is empty: a post-empty
    chain exhausted (its gauge present), held for the rule's ``for:``."""
    exhausted = any(
        e.kind == "post_empty" and e.unanswered_ts is not None
        for e in store.notices_of(sim.region, sim.branch) or []
    )
    if not exhausted:
        spell.unanswered_from = None
        return
    spell.exhausted = True
    if spell.unanswered_from is None:
        spell.unanswered_from = ts
    if ts - spell.unanswered_from >= for_seconds:
        spell.paged_unanswered = True


# -- the report ---------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _change(off: float, on: float) -> str:
    return "–" if off == 0 else f"{(on - off) / off:+.1%}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


@dataclass(frozen=True)
class Verdict:
    pages_down: float
    empty_down: float

    @property
    def met(self) -> bool:
        return self.pages_down >= PAGES_DOWN_TARGET and self.empty_down >= EMPTY_DOWN_TARGET

    def text(self) -> str:
        def said(down: float, target: float, what: str) -> str:
            verdict = "met" if down >= target else "MISSED"
            return f"{what} down {down:.1%} (target {target:.0%}: {verdict})"

        return (
            f"{said(self.pages_down, PAGES_DOWN_TARGET, 'pages')}; "
            f"{said(self.empty_down, EMPTY_DOWN_TARGET, 'post-1 empty minutes')}"
        )


def report(scenario: str, off: Day, on: Day, notices: NoticesConfig) -> Verdict:
    """Print the scenario's table; whether its targets are met."""
    pages_down = 1 - on.pages() / off.pages() if off.pages() else 0.0
    empty_down = 1 - on.empty_minutes() / off.empty_minutes() if off.empty_minutes() else 0.0
    ratings, quick = on.followed_up()
    acks = on.ack_seconds()
    post_acks = on.ack_seconds("post_empty")
    kinds: dict[str, int] = {}
    for sent in on.sent.values():
        kinds[sent.kind] = kinds.get(sent.kind, 0) + 1
    off_backstop = off.thresholds.greeter_empty_seconds + ALERTS.post_for_seconds
    on_backstop = on.thresholds.greeter_empty_seconds + ALERTS.post_for_seconds
    rows = [
        ("post-1 empty minutes per branch-day", f"{off.empty_minutes():.1f}",
         f"{on.empty_minutes():.1f}", _change(off.empty_minutes(), on.empty_minutes()),
         f"≥ {EMPTY_DOWN_TARGET:.0%} down"),
        (f"… of them in spells under post_empty_seconds ({notices.post_empty_seconds:g} s: "
         "no notice yet)", f"{off.empty_minutes(notices.post_empty_seconds):.1f}",
         f"{on.empty_minutes(notices.post_empty_seconds):.1f}", "", ""),
        ("post-1 episodes > 2 min per branch-day", f"{off.long_episodes():.2f}",
         f"{on.long_episodes():.2f}", _change(off.long_episodes(), on.long_episodes()), ""),
        ("on-call pages per branch-day", f"{off.pages():.3f}", f"{on.pages():.3f}",
         _change(off.pages(), on.pages()), f"≥ {PAGES_DOWN_TARGET:.0%} down"),
        ("… backstop (post 1 empty ≥ threshold + for:)", f"{off_backstop:.0f} s",
         f"{on_backstop:.0f} s", "", ""),
        ("… chains exhausted with post 1 empty (per branch-day)", "–",
         f"{on.per_day(on.exhausted()):.3f}", "", ""),
        ("notices sent per branch-day (post empty / unsatisfied / queue)", "–",
         " / ".join(f"{on.per_day(kinds.get(k, 0)):.2f}"
                    for k in ("post_empty", "unsatisfied", "queue_long")), "", ""),
        ("notice → ack p50 / p99 (all kinds)", "–",
         f"{_seconds(percentile(acks, 0.5))} / {_seconds(percentile(acks, 0.99))}", "", ""),
        ("notice → ack p50 / p99 (post empty)", "–",
         f"{_seconds(percentile(post_acks, 0.5))} / {_seconds(percentile(post_acks, 0.99))}",
         "", ""),
        ("notices acknowledged", "–",
         f"{len(acks) / len(on.sent):.0%}" if on.sent else "–", "", ""),
        ("unsatisfied ratings followed up within 5 min", "0 % (nobody is told)",
         f"{quick / ratings:.0%} of {ratings}" if ratings else "–", "", ""),
        ("post-empty notice sent after the threshold, p99 (in-process, tick "
         f"{TICK:g} s)", "–", _seconds(percentile(on.sent_after_threshold(), 0.99)),
         "", ""),
    ]  # fmt: skip
    print(f"\n### scenario {scenario}: {off.branches} branches, one business day\n")
    print("| measure | notices off | notices on | change | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    verdict = Verdict(pages_down, empty_down)
    print(f"\n{scenario}: {verdict.text()} (simulated in {off.seconds:.0f} s off, "
          f"{on.seconds:.0f} s on)")  # fmt: skip
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_loop", description=__doc__)
    parser.add_argument("--branches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--scenarios",
        default="normal,thin",
        help=f"comma-separated, of {', '.join(SCENARIOS)} (default: normal,thin)",
    )
    parser.add_argument(
        "--post-empty-seconds",
        type=float,
        default=NoticesConfig().post_empty_seconds,
        help="notices.post_empty_seconds of the notices-on run (default: the collector's)",
    )
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=20,
        help="post 1 vacated this many times through Mosquitto, a collector and an agent "
        "(0: skip that part)",
    )
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or args.branches < 1:
        parser.error(f"unknown scenarios {unknown}" if unknown else "--branches must be >= 1")
    if not args.post_empty_seconds > 0:
        parser.error("--post-empty-seconds must be positive")
    notices = NoticesConfig(post_empty_seconds=args.post_empty_seconds)
    timings = ("post_empty_seconds", "ack_timeout_seconds", "repeat_seconds")
    print("notices on:", ", ".join(f"{name} = {getattr(notices, name):g}" for name in timings))
    met = True
    for scenario in scenarios:
        off = simulate_day(args.branches, args.seed, scenario, None)
        on = simulate_day(args.branches, args.seed, scenario, notices)
        met = report(scenario, off, on, notices).met and met
    if args.latency_runs > 0:
        # Imported here: the in-process part needs neither Mosquitto nor the test helpers.
        from bench.floor_latency import measure_latency, report_latency  # noqa: PLC0415

        met = report_latency(measure_latency(args.latency_runs)) <= SENT_AFTER_TARGET and met
    print("\nresult:", "pass" if met else "FAIL (a target is missed)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
