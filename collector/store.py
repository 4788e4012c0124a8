"""The store: every branch's floor state, fed by events and statuses, read by scrapes and the API.

Pure: no I/O, no clock (times come in as arguments), not thread-safe (the
collector runtime holds a lock around every call but :meth:`Store.render_chunks`
and :meth:`Store.snapshot_chunks`, which take it branch by branch).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from functools import partial
from typing import Any, Final

import msgspec

from branchwatch.contract.events import Event, PositionStaffed, PositionVacated
from branchwatch.contract.messages import Status
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds
from collector import snapshot as snapshot_format
from collector.exposition import ALL, NO_LOCK, BranchKey, Exposition, Lock, Shard, ShardChunks
from collector.floor import agents
from collector.floor.branch import AgentState, BranchState, new_agent, new_branch
from collector.floor.config import FloorConfig, FloorRules
from collector.floor.model import HANDLERS, Handler, handler_for
from collector.floor.posts import PostIncident, earlier_start, post_incident
from collector.notices.book import Outbound
from collector.notices.config import NoticesConfig
from collector.notices.engine import NoticeEngine
from collector.notices.view import EpisodeView, notices_view
from collector.rebuild import Rebuild, day_start
from collector.replays import ReplayAsk, Replays
from collector.views import BranchDetail, BranchSummary, detail, summarize


class ApplyResult(msgspec.Struct):
    """What became of one message's events; each event lands in exactly one bucket."""

    applied: int = 0  # applied live
    late: int = 0  # filled a seq gap (applied as late)
    duplicate: int = 0
    missing: int = 0  # new seq gaps counted by this call
    rejected: dict[str, int] = msgspec.field(default_factory=dict)  # reason -> events refused
    held: int = 0  # held until the agent's rebuild (collector/rebuild.py)
    lost: int = 0  # missing seqs this message showed the agent no longer holds
    # reason -> labels left out of applied events for a series cap (e.g. a teller beyond
    # floor.max_tellers): the event counts, the label does not.
    refused: dict[str, int] = msgspec.field(default_factory=dict)
    # Agents that began a new spool in this message (their old one was lost), for the log.
    new_spools: list[agents.NewSpool] = msgspec.field(default_factory=list)


class RebuildResult(msgspec.Struct):
    """A branch rebuilt from its agents' replays: what became of the events held."""

    region: str
    branch: str
    agents: list[str]
    # The events applied (all as late: nothing of them is news), refused, and the seqs
    # missing between them (now ordinary gaps).
    events: ApplyResult
    before_day: int  # day-scoped events from before the day's opening, left out
    let_go: int  # beyond what a rebuild holds per agent


MAX_INCIDENTS: Final = 1000
NOTICES_OFF: Final = NoticesConfig(enabled=False)


class Store:
    def __init__(
        self,
        config: FloorConfig,
        *,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        notices: NoticesConfig | None = None,
        rebuild: bool = False,
    ) -> None:
        """``rebuild``: an agent the store has no seq of is rebuilt from its replay
        (collector/rebuild.py; the collector turns it on), else its first event is
        taken as it comes."""
        # No [notices] config given: notices are off (the collector always gives one).
        notices = notices or NOTICES_OFF
        self._rules = FloorRules(config, thresholds, notices=notices.enabled)
        self._branches: dict[BranchKey, BranchState] = {}
        self._notices = NoticeEngine(notices, self._rules, self._rules.thresholds)
        # Branches with a notice deadline: a heap of (deadline, branch) whose stale entries
        # are skipped (the live deadline of each branch is in _due_at).
        self._due_heap: list[tuple[float, BranchKey]] = []
        self._due_at: dict[BranchKey, float] = {}
        self._exposition = Exposition(self._rules, notices=notices.enabled)
        self._rebuild = rebuild
        self._replays = Replays()
        # Required posts emptied/filled, for the runtime to drain (Grafana annotations).
        # Off unless asked for; bounded: the oldest are dropped (and counted) first.
        self.record_incidents = False
        self.incidents_dropped = 0
        self._incidents: deque[PostIncident] = deque()
        self._handlers: dict[type[Event], Handler] = {
            **HANDLERS,
            PositionStaffed: self._watched(HANDLERS[PositionStaffed]),
            PositionVacated: self._watched(HANDLERS[PositionVacated]),
        }

    def _watched(self, handler: Handler) -> Handler:
        """``handler`` for a staffed/vacated, noting the incidents it causes."""

        def apply(rules: FloorRules, b: BranchState, a: AgentState, e: Any) -> str | None:
            post = b.posts.get(e.position)
            if not self.record_incidents or post is None:
                return handler(rules, b, a, e)
            was_staffed, since = bool(post.staff), post.changed_ts
            reason = handler(rules, b, a, e)
            incident = post_incident(rules, b, e.position, was_staffed, since)
            if incident is not None:
                if len(self._incidents) >= MAX_INCIDENTS:
                    self._incidents.popleft()
                    self.incidents_dropped += 1
                self._incidents.append(incident)
            return reason

        return apply

    def drain_incidents(self) -> list[PostIncident]:
        """The incidents noted since the last call, oldest first."""
        drained = list(self._incidents)
        self._incidents.clear()
        return drained

    @property
    def branch_count(self) -> int:
        return len(self._branches)

    @property
    def exposition(self) -> Exposition:
        """The fragment cache behind :meth:`render` (for inspection)."""
        return self._exposition

    def _branch(self, region: str, branch: str, ts: float, received: float) -> BranchState:
        key = (region, branch)
        state = self._branches.get(key)
        if state is None:
            state = self._branches[key] = new_branch(self._rules, region, branch, ts, received)
            return state
        state.last_received = max(state.last_received, received)
        if ts < state.first_ts:
            earlier_start(state, ts)  # a replay: any order gives the in-order start
        return state

    def apply_events(
        self, region: str, branch: str, agent: str, events: Sequence[Event], received: float
    ) -> ApplyResult:
        """Apply one message's events (in increasing seq order) from one agent."""
        result = ApplyResult()
        if not events:
            return result
        b = self._branch(region, branch, events[0].ts, received)
        a = b.agents.get(agent)
        if a is None:
            if len(b.agents) >= self._rules.max_agents:
                result.rejected["too_many_agents"] = len(events)
                return result
            a = b.agents[agent] = new_agent(agent, received)
            if self._rebuild:
                self._replays.start_rebuild(b, a)
        if a.rebuilding:
            result.held, result.duplicate = self._replays.hold(b, a, events, received)
            seen = max(a.last_seen, received) if result.held else a.last_seen
            agents.heard_events(a, a.last_seq, seen, news=result.held > 0)
            self._exposition.mark_dirty((region, branch))
            return result
        result.lost = self._replays.answered(b, a, events, received)
        self._apply_in_order(b, a, events, received, result)
        if result.missing:
            self._replays.gap(b, a)
        if result.duplicate < len(events) or result.lost:
            self._changed(b)
        return result

    def _apply_in_order(
        self,
        b: BranchState,
        a: AgentState,
        events: Sequence[Event],
        received: float,
        result: ApplyResult,
        *,
        history: bool = False,
        news: AbstractSet[int] = frozenset(),
        counts: Callable[[Event], bool] | None = None,
    ) -> int:
        """Apply ``events`` (in increasing seq order) of agent ``a``, counting into ``result``.

        ``history``: a rebuild's events, late but for the seqs in ``news``;
        ``counts``: whether a rebuild applies an event that consumes its seq.
        Returns how many events ``counts`` left out.
        """
        rules = self._rules
        handlers = self._handlers
        watches, observe = self._notices.watches, self._notices.observe
        rejected = result.rejected
        missing = a.missing
        last = a.last_seq
        applied = late = duplicate = gaps = left_out = 0
        newest = b.last_event_ts
        for event in events:
            seq = event.seq
            if last is None or seq > last:
                if last is not None and seq != last + 1:
                    gaps += agents.record_gap(a, last, seq, result.new_spools)
                last = seq
                is_late = history and seq not in news
            elif seq in missing:
                del missing[seq]
                is_late = True
            else:
                duplicate += 1
                continue
            if counts is not None and not counts(event):
                left_out += 1
                continue
            ts = event.ts
            kind = type(event)
            handler = handlers.get(kind) or handler_for(kind)
            reason = handler(rules, b, a, event)
            if reason is not None:
                rejected[reason] = rejected.get(reason, 0) + 1
                continue
            if kind in watches:
                observe(b, event, live=not is_late, now=received)
            if is_late:
                late += 1
            else:
                applied += 1
            if newest is None or ts > newest:
                newest = ts
        # Seen when received, not at the event's time: an agent whose clock is wrong is still
        # heard from (and a replay of old events shows it is alive now).
        spoke = duplicate < len(events)
        seen = max(a.last_seen, received) if spoke else a.last_seen
        agents.heard_events(a, last, seen, news=not history and spoke)
        b.last_event_ts = newest
        for reason, count in b.refused.items():
            result.refused[reason] = result.refused.get(reason, 0) + count
        b.refused.clear()
        result.applied += applied
        result.late += late
        result.duplicate += duplicate
        result.missing += gaps
        return left_out

    def _changed(self, b: BranchState) -> None:
        key = (b.region, b.branch)
        self._exposition.mark_dirty(key)
        self._schedule(key, b.notices.next_due)

    def apply_status(
        self,
        region: str,
        branch: str,
        agent: str,
        status: Status,
        received: float,
        refused: dict[str, int] | None = None,
    ) -> bool:
        """Apply an agent's status; False when ignored (older session) or refused.

        ``refused`` counts, by reason, a refused status and the parts of an applied
        one left out for a series cap.
        """
        ts = received if status.ts is None else status.ts
        b = self._branch(region, branch, ts, received)
        a: AgentState | None = b.agents.get(agent)
        if a is None:
            if len(b.agents) >= self._rules.max_agents:
                agents.count(refused, "too_many_agents")
                return False
            a = new_agent(agent, ts)
            if not agents.apply_status(self._rules, b, a, status, received, refused):
                return False
            b.agents[agent] = a
            if self._rebuild:
                self._replays.start_rebuild(b, a)
        else:
            was_up = a.up
            if not agents.apply_status(self._rules, b, a, status, received, refused):
                return False
            if a.up and not was_up:
                self._replays.back_online(b, a)
        self._exposition.mark_dirty((region, branch))
        return True

    # floor notices ---------------------------------------------------------------------

    @property
    def notices_enabled(self) -> bool:
        return self._notices.enabled

    def _schedule(self, key: BranchKey, due: float | None) -> None:
        if due is None:
            self._due_at.pop(key, None)
            return
        if self._due_at.get(key) == due:
            return
        self._due_at[key] = due
        heap = self._due_heap
        heapq.heappush(heap, (due, key))
        if len(heap) > 2 * len(self._due_at) + 1024:
            # Deadlines that moved leave stale entries; drop them all at once.
            heap[:] = [(when, k) for k, when in self._due_at.items()]
            heapq.heapify(heap)

    def due_notices(self, now: float) -> list[Outbound]:
        """Take every notice step due at ``now``; the ``notify`` commands to publish.

        Costs only the branches whose deadline passed (the runtime calls it every tick).
        """
        heap, due_at = self._due_heap, self._due_at
        keys = []
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if due_at.get(key) == when:
                del due_at[key]
                keys.append(key)
        out: list[Outbound] = []
        for key in keys:
            state = self._branches.get(key)
            if state is None or agents.rebuilding(state):
                continue  # a rebuilt branch is scheduled again: no notice about the past
            out.extend(self._notices.due(state, now))
            self._schedule(key, state.notices.next_due)
            self._exposition.mark_dirty(key)
        return out

    def notices_of(self, region: str, branch: str) -> list[EpisodeView] | None:
        """A branch's open notice episodes with their chains; None for an unknown branch."""
        state = self._branches.get((region, branch))
        return None if state is None else notices_view(state.notices)

    # reads -------------------------------------------------------------------------------

    def render_bytes(self) -> bytes:
        """The whole floor exposition (Prometheus text format 0.0.4)."""
        return self._exposition.render(self._branches)

    def render_chunks(self, shard: Shard = ALL, lock: Lock = NO_LOCK) -> ShardChunks:
        """``shard``'s floor exposition as cached gzip members, for a zero-copy send (do
        not modify). The runtime calls it without its lock held and passes the lock as
        ``lock``: it is taken branch by branch (collector/exposition/cache.py)."""
        return self._exposition.chunks(self._branches, shard, lock)

    def render(self) -> str:
        """:meth:`render_bytes` as text (tests and debugging; scrapes use the bytes)."""
        return self.render_bytes().decode()

    def branch_summaries(self, now: float) -> list[BranchSummary]:
        return [summarize(self._rules, self._branches[key], now) for key in sorted(self._branches)]

    def branch_detail(self, region: str, branch: str, now: float) -> BranchDetail | None:
        state = self._branches.get((region, branch))
        return None if state is None else detail(self._rules, state, now)

    def branch_state(self, region: str, branch: str) -> BranchState | None:
        """One branch's live state, for pure readers (the lobby screen's estimate) that run
        under the runtime's lock and change nothing; None for an unknown branch."""
        return self._branches.get((region, branch))

    # replays ---------------------------------------------------------------------------

    def replay_requests(self) -> list[tuple[str, str, str, int]]:
        """``(region, branch, agent, from_seq)`` for every known agent, from its last seq + 1.

        An agent known only from its status (no event applied yet) is asked from 0; one
        being rebuilt is asked by :meth:`replay_asks`.
        """
        return [
            (region, branch, name, 0 if agent.last_seq is None else agent.last_seq + 1)
            for (region, branch), state in sorted(self._branches.items())
            for name, agent in sorted(state.agents.items())
            if not agent.rebuilding
        ]

    def replay_asks(self, now: float, first_wait: float) -> list[ReplayAsk]:
        """The replays to ask for at ``now``: rebuilds not asked yet (from 0), and gaps due
        (from the first missing seq; asked again after ``first_wait``, then twice as
        long each time, while the agent is not offline)."""
        return self._replays.asks(now, first_wait, self._branches)

    def session_lost(self) -> list[tuple[str, str, str, int]]:
        """The broker lost our session (restart without persistence, another broker):
        what it queued for us is gone. Returns :meth:`replay_requests`; rebuilds and
        gaps are asked again at the next :meth:`replay_asks`."""
        self._replays.session_lost()
        return self.replay_requests()

    def reask_rebuilds(self) -> None:
        """Ask every agent being rebuilt again (back from a lost connection)."""
        self._replays.reask_rebuilds()

    def settle_rebuilds(self, now: float) -> list[RebuildResult]:
        """Rebuild the branches whose agents' answers are in (collector/rebuild.py)."""
        return [
            self._rebuilt(b, rebuilds, now)
            for b, rebuilds in self._replays.ready_branches(now, self._branches)
        ]

    def _rebuilt(self, b: BranchState, rebuilds: dict[str, Rebuild], now: float) -> RebuildResult:
        held = {name: rebuild.in_order() for name, rebuild in sorted(rebuilds.items())}
        start = day_start(b.opened_ts, held)
        result = ApplyResult()
        before_day = 0
        for name, events in held.items():
            a = b.agents.get(name)
            if a is None:
                continue
            a.rebuilding = False
            counts = None if start is None else partial(start.counts, name)
            news = rebuilds[name].news
            before_day += self._apply_in_order(
                b, a, events, now, result, history=True, news=news, counts=counts
            )
            if a.missing:
                self._replays.gap(b, a)
        self._changed(b)
        return RebuildResult(
            region=b.region,
            branch=b.branch,
            agents=list(held),
            events=result,
            before_day=before_day,
            let_go=sum(rebuild.let_go for rebuild in rebuilds.values()),
        )

    def first_missing(self, region: str, branch: str, agent: str) -> int | None:
        """The oldest seq still missing for one agent (where a gap replay starts), if any."""
        state = self._branches.get((region, branch))
        known = None if state is None else state.agents.get(agent)
        if known is None or not known.missing:
            return None
        return next(iter(known.missing))

    def expire_stale(self, now: float, max_age: float) -> list[tuple[str, str]]:
        """Drop the branches with no message received for more than ``max_age`` seconds."""
        stale = sorted(
            key for key, state in self._branches.items() if now - state.last_received > max_age
        )
        for key in stale:
            del self._branches[key]
            self._exposition.forget(key)
            self._due_at.pop(key, None)
            self._replays.forget(key)
        return stale

    def snapshot(self) -> bytes:
        """Every branch's state as one snapshot (collector/snapshot.py)."""
        return b"".join(self.snapshot_chunks())

    def snapshot_chunks(self, lock: Lock = NO_LOCK) -> Iterator[bytes]:
        """:meth:`snapshot` as chunks to write one after another, each made when asked
        for, ``lock`` taken branch by branch (:func:`collector.snapshot.chunks`)."""
        return snapshot_format.chunks(self._rules, self._branches, lock)

    @classmethod
    def restore(
        cls,
        config: FloorConfig,
        data: bytes,
        *,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        notices: NoticesConfig | None = None,
        rebuild: bool = False,
    ) -> Store:
        """A store continuing from :meth:`snapshot`; :class:`SnapshotError` when unusable.

        With ``rebuild``, an agent with no seq yet (known from its status, or caught
        mid-rebuild: the events held are not in a snapshot) is rebuilt again.
        """
        store = cls(config, thresholds=thresholds, notices=notices, rebuild=rebuild)
        for state in snapshot_format.decode(store._rules, data):
            key = (state.region, state.branch)
            store._branches[key] = state
            for agent in state.agents.values():
                agent.rebuilding = False
                if rebuild and agent.last_seq is None:
                    store._replays.start_rebuild(state, agent)
                if agent.missing:
                    store._replays.gap(state, agent)
            store._exposition.mark_dirty(key)
            store._schedule(key, state.notices.next_due)
        return store
