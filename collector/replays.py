"""What the store asks agents to replay, and what it holds meanwhile.

Two reasons to ask an agent for a ``replay``: the collector has no seq of it
(a rebuild from seq 0, :mod:`collector.rebuild`), or its seq jumped (a gap,
from the first missing seq, :mod:`collector.gaps`). This keeps both kinds of
bookkeeping for the :class:`~collector.store.Store`; like the store it is pure
(times come in as arguments) and runs under the runtime's lock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from branchwatch.contract.events import Event
from collector.floor.branch import AgentState, BranchState
from collector.gaps import GapAsks
from collector.rebuild import Rebuild

BranchKey = tuple[str, str]
AgentKey = tuple[str, str, str]


class ReplayAsk(NamedTuple):
    """Send ``{"type": "replay", "from_seq": from_seq}`` on this agent's ``cmd`` topic."""

    region: str
    branch: str
    agent: str
    from_seq: int


def offline(agent: AgentState) -> bool:
    """Its latest status (or will) says offline, and no event came since."""
    return agent.session is not None and not agent.up


class Replays:
    def __init__(self) -> None:
        self._rebuilds: dict[BranchKey, dict[str, Rebuild]] = {}
        self._gaps: dict[AgentKey, GapAsks | None] = {}  # None: not asked yet

    # rebuilds --------------------------------------------------------------------------

    def start_rebuild(self, b: BranchState, a: AgentState) -> None:
        a.rebuilding = True
        self._rebuilds.setdefault((b.region, b.branch), {})[a.name] = Rebuild()

    def _rebuild_of(self, b: BranchState, a: AgentState) -> Rebuild:
        rebuilds = self._rebuilds.setdefault((b.region, b.branch), {})
        return rebuilds.setdefault(a.name, Rebuild())

    def hold(
        self, b: BranchState, a: AgentState, events: Sequence[Event], received: float
    ) -> tuple[int, int]:
        """Hold a rebuilding agent's events; (held, duplicates)."""
        return self._rebuild_of(b, a).hold(events, received)

    def back_online(self, b: BranchState, a: AgentState) -> None:
        if a.rebuilding:
            self._rebuild_of(b, a).ask_again(even_if_answering=False)

    def ready_branches(
        self, now: float, branches: Mapping[BranchKey, BranchState]
    ) -> Iterator[tuple[BranchState, dict[str, Rebuild]]]:
        """The branches whose every rebuilding agent has its answer in, taken out."""
        for key in list(self._rebuilds):
            rebuilds = self._rebuilds[key]
            b = branches.get(key)
            if b is None:
                del self._rebuilds[key]
                continue
            agents = b.agents
            if all(
                name not in agents or rebuild.ready(now, offline(agents[name]))
                for name, rebuild in rebuilds.items()
            ):
                del self._rebuilds[key]
                yield b, rebuilds

    # gaps ------------------------------------------------------------------------------

    def gap(self, b: BranchState, a: AgentState) -> None:
        """The agent has missing seqs: ask for them (at the next :meth:`asks`)."""
        self._gaps.setdefault((b.region, b.branch, a.name), None)

    def answered(
        self, b: BranchState, a: AgentState, events: Sequence[Event], received: float
    ) -> int:
        """Note an answer to a gap ask starting in ``events``; how many seqs it shows lost."""
        asks = self._gaps.get((b.region, b.branch, a.name))
        if asks is None:
            return 0
        asks.follow(a)
        answer = asks.answer_starts(events, a.last_seq)
        if answer is None:
            return 0
        return asks.skipped(a, *answer, received)

    # asking ----------------------------------------------------------------------------

    def asks(
        self, now: float, first_wait: float, branches: Mapping[BranchKey, BranchState]
    ) -> list[ReplayAsk]:
        """The replays to ask for now (each noted as asked at ``now``).

        ``first_wait``: the delay before a gap is asked for again (then doubled).
        """
        out = []
        for (region, branch), rebuilds in self._rebuilds.items():
            for name, rebuild in rebuilds.items():
                if rebuild.asked_at is None:
                    rebuild.asked(now)
                    out.append(ReplayAsk(region, branch, name, 0))
        for key in list(self._gaps):
            b = branches.get(key[:2])
            a = None if b is None else b.agents.get(key[2])
            if a is None or not a.missing:
                del self._gaps[key]
                continue
            if a.rebuilding or offline(a):
                continue  # an offline agent's broker session holds the previous ask
            asks = self._gaps[key]
            if asks is None:
                asks = self._gaps[key] = GapAsks(first_wait, a.spools_started)
            asks.follow(a)
            first = next(iter(a.missing))
            if asks.due_at(first, now):
                asks.ask(first, now)
                out.append(ReplayAsk(*key, first))
        return out

    def reask_rebuilds(self) -> None:
        for rebuilds in self._rebuilds.values():
            for rebuild in rebuilds.values():
                rebuild.ask_again(even_if_answering=True)

    def session_lost(self) -> None:
        """The broker lost our session: answers in flight may be gone, so ask again."""
        self.reask_rebuilds()
        for asks in self._gaps.values():
            if asks is not None:
                asks.due = 0.0

    def forget(self, key: BranchKey) -> None:
        self._rebuilds.pop(key, None)
