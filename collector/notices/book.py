"""Book-keeping shared by the notice rules: settings, routing, sending, episode life.

A :class:`Tick` is one :meth:`NoticeEngine.due` pass over one branch. It
names and counts what it sends and remembers the posts already told in this
pass, so nobody is sent two notices for the same moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from branchwatch.contract.messages import Notify
from branchwatch.thresholds import Thresholds
from collector.floor.branch import BranchState
from collector.floor.config import FloorRules
from collector.notices.config import NoticesConfig
from collector.notices.state import Episode, Notice, NoticeBook, NoticeKind, Outcome, total_key
from collector.notices.texts import Texts

MAX_OPEN_EPISODES: Final = 32  # per branch; more are refused and counted (book.dropped)
MAX_ENDED_EPISODES: Final = 16  # per branch, kept so a late ack of their notices counts


class Policy:
    """The settings every notice rule reads, derived once from the validated configs."""

    def __init__(self, config: NoticesConfig, rules: FloorRules, thresholds: Thresholds) -> None:
        if config.enabled:  # a disabled engine reads none of it
            config.validate(frozenset(rules.post_names))
        self.config: Final = config
        self.rules: Final = rules
        self.texts: Final = Texts(config.language, config.texts.overrides())
        self.required: Final = tuple(sorted(rules.required_posts))  # post 1 is served first
        self.wait_warning_seconds: Final = thresholds.wait_warning_seconds


class Outbound(NamedTuple):
    """A ``notify`` command for the runtime to publish on ``bw/v1/region/branch/agent/cmd``."""

    region: str
    branch: str
    agent: str
    notify: Notify


def count(book: NoticeBook, kind: NoticeKind, outcome: Outcome) -> None:
    key = total_key(kind, outcome)
    book.totals[key] = book.totals.get(key, 0) + 1


# The first letter of a notice id, by what the notice is about.
ID_LETTERS: Final[dict[NoticeKind, str]] = {
    "post_empty": "e",
    "unsatisfied": "u",
    "queue_long": "q",
}


def notice_id(book: NoticeBook, episode: Episode, position: int) -> str:
    """The id of the notice to ``position`` in ``episode``: the same in both collectors of
    an HA pair, so the agent delivers it once whichever of them sent it.

    Made only of what both see alike in the branch's events: what the episode is about
    (``e1`` post 1 empty, ``u`` an unsatisfied rating, ``q`` a long queue), the event time
    it is named by in milliseconds (the post's empty time, the rating's time, the oldest
    waiting ticket's), and the post told: ``e1-1764054000123-3``. A notice whose makings
    were used before in this branch (a post told again in the same episode; a queue long
    again with the same oldest ticket) gets the next suffix, ``.1``, ``.2``, after the
    highest the book holds. No collector clock, no counter: after a restart from a
    snapshot the replayed events name a notice as before (a notice the crash forgot is
    the same notice, and the agent takes it for a repeat), and a new notice has new makings.
    """
    origin = episode.since if episode.origin is None else episode.origin
    subject = episode.position if episode.kind == "post_empty" else ""
    base = f"{ID_LETTERS[episode.kind]}{subject}-{round(origin * 1000)}-{position}"
    used = -1  # the highest suffix taken (0: the base itself); -1: none
    for held in (*book.open, *book.ended):
        for notice in held.notices:
            if notice.id == base:
                used = max(used, 0)
            elif notice.id.startswith(base) and notice.id[len(base)] == ".":
                used = max(used, _suffix(notice.id[len(base) + 1 :]))
    return base if used < 0 else f"{base}.{used + 1}"


def _suffix(text: str) -> int:
    return int(text) if text.isdigit() else 0


def intercom_agents(branch: BranchState) -> list[str]:
    """Every agent whose intercom reported a post of this branch, sorted."""
    return sorted({post.agent for post in branch.posts.values() if post.agent is not None})


def reachable(branch: BranchState, position: int) -> str | None:
    """The agent that carries notices for ``position``, or None when none can.

    The agent that last reported the post; failing that, the branch's only
    intercom agent. An agent whose last status says offline is skipped: the
    chain moves on instead of waiting out an ack that cannot come.
    """
    post = branch.posts.get(position)
    name = post.agent if post is not None else None
    if name is None:
        agents = intercom_agents(branch)
        if len(agents) != 1:
            return None
        name = agents[0]
    agent = branch.agents.get(name)
    if agent is not None and agent.session is not None and not agent.up:
        return None
    return name


def staffed(branch: BranchState, position: int) -> bool:
    post = branch.posts.get(position)
    return post is not None and bool(post.staff)


class Target(NamedTuple):
    position: int
    agent: str


BUSY: Final = Target(0, "")  # every candidate post was told in this pass: try the next one


def first_reachable(
    tick: Tick, positions: Iterable[int], *, staffed_only: bool = True
) -> Target | None:
    """The first of ``positions`` (staffed, unless not asked) whose intercom can be reached.

    :data:`BUSY` when the only such posts were told in this pass; None when there are none.
    """
    busy = False
    for position in positions:
        if staffed_only and not staffed(tick.branch, position):
            continue
        agent = reachable(tick.branch, position)
        if agent is None:
            continue
        if position in tick.told:
            busy = True
            continue
        return Target(position, agent)
    return BUSY if busy else None


class Tick:
    def __init__(self, branch: BranchState, now: float) -> None:
        self.branch = branch
        self.now = now
        self.told: set[int] = set()  # posts sent a notice in this pass
        self.out: list[Outbound] = []

    def send(self, episode: Episode, position: int, agent: str, text: str) -> Notice:
        book = self.branch.notices
        notice = Notice(
            id=notice_id(book, episode, position), position=position, agent=agent, sent_ts=self.now
        )
        episode.notices.append(notice)
        count(book, episode.kind, "sent")
        self.told.add(position)
        command = Notify(v=1, id=notice.id, position=position, text=text)
        self.out.append(Outbound(self.branch.region, self.branch.branch, agent, command))
        return notice


def open_episode(book: NoticeBook, episode: Episode) -> bool:
    """Add an episode; False (and counted) when the branch has too many open."""
    if len(book.open) >= MAX_OPEN_EPISODES:
        book.dropped += 1
        return False
    book.open.append(episode)
    return True


def end_episode(book: NoticeBook, episode: Episode, ts: float, outcome: Outcome | None) -> None:
    """Close an episode, counting ``outcome`` (None: it ends without one)."""
    # By identity: two episodes may hold equal fields (structs compare by value).
    book.open = [e for e in book.open if e is not episode]
    episode.ended_ts = ts
    episode.due = None
    episode.unanswered_ts = None
    if outcome is not None:
        count(book, episode.kind, outcome)
    if episode.notices:
        book.ended.append(episode)
        del book.ended[:-MAX_ENDED_EPISODES]


def is_open(book: NoticeBook, episode: Episode) -> bool:
    return any(e is episode for e in book.open)


def schedule(book: NoticeBook) -> None:
    """Recompute the branch's next deadline after its episodes changed."""
    dues = [episode.due for episode in book.open if episode.due is not None]
    if book.queue_due is not None:
        dues.append(book.queue_due)
    book.next_due = min(dues) if dues else None
