"""A required post left empty: backfill notices, re-notice, escalation, unanswered.

The chain of one episode, each step taken when the previous one's ack
timeout passes without an ack:

1. the first staffed post of the backfill order not yet told in this episode
   (one notice; repeated down the order);
2. the escalation posts, or (none configured) an all-call: one notice per
   intercom agent of the branch, at a post that agent reported;
3. unanswered: counted once, and the unanswered timestamp is set until an
   ack or the post is staffed again (the page condition).

An ack stops the chain: the post then has ``ack_timeout_seconds`` to be
staffed, after which the acking post is told once more, and then the chain
goes on where it stood. A step whose posts were all told in the same pass
(another episode came first) waits for the next pass.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from collector.notices.book import BUSY, Policy, Tick, count, first_reachable, reachable, staffed
from collector.notices.state import Episode

Targets = list[tuple[int, str]]  # (position, agent) to notify
WAIT: Final = None  # a step that must wait for the next pass


class Step(NamedTuple):
    targets: Targets  # empty: the chain is exhausted
    escalation: bool  # the escalation posts / all-call (else a backfill post)


def start(policy: Policy, position: int, since: float) -> Episode:
    """A post found empty: nothing is sent before ``post_empty_seconds``."""
    due = since + policy.config.post_empty_seconds
    return Episode(kind="post_empty", since=since, position=position, due=due)


def advance(policy: Policy, tick: Tick, episode: Episode) -> None:
    """The episode's deadline passed (the post is still empty, the branch open)."""
    timed_out = episode.stage != "waiting"
    if episode.stage == "acked" and _renotify(policy, tick, episode):
        return
    step = _next_step(policy, tick, episode)
    if step is WAIT:
        episode.due = tick.now
        return
    if not step.targets:
        if episode.stage != "unanswered":
            episode.stage = "unanswered"
            episode.unanswered_ts = tick.now
            count(tick.branch.notices, "post_empty", "unanswered")
        episode.due = None
        return
    if timed_out:
        count(tick.branch.notices, "post_empty", "escalated")
    _send(policy, tick, episode, step.targets)
    episode.stage = "escalation" if step.escalation else "backfill"
    episode.escalated = step.escalation


def _renotify(policy: Policy, tick: Tick, episode: Episode) -> bool:
    """Tell the acking post once more; False when the chain should go on instead."""
    position = episode.acked_by
    if position is None or position in episode.renotified or not staffed(tick.branch, position):
        return False
    agent = reachable(tick.branch, position)
    if agent is None:
        return False
    if position in tick.told:
        episode.due = tick.now
        return True
    episode.renotified.append(position)
    _send(policy, tick, episode, [(position, agent)])
    episode.stage = "renotified"
    return True


def _send(policy: Policy, tick: Tick, episode: Episode, targets: Targets) -> None:
    assert episode.position is not None  # a post_empty episode always has its post
    texts = policy.texts
    text = texts.render(
        "post_empty",
        post=str(episode.position),
        post_name=policy.rules.post_names.get(episode.position),
        empty_for=texts.duration(tick.now - episode.since),
    )
    for position, agent in targets:
        tick.send(episode, position, agent, text)
    episode.step_ts = tick.now
    episode.due = tick.now + policy.config.ack_timeout_seconds
    episode.unanswered_ts = None


def _next_step(policy: Policy, tick: Tick, episode: Episode) -> Step | None:
    """The chain's next step (no targets: exhausted), or WAIT when its posts are busy."""
    if episode.escalated:
        return Step([], escalation=True)
    told = {notice.position for notice in episode.notices}
    untold = [p for p in policy.rules.backfill_order if p not in told and p != episode.position]
    target = first_reachable(tick, untold)
    if target is BUSY:
        return WAIT
    if target is not None:
        return Step([target], escalation=False)
    if policy.config.escalation_positions:
        targets = _escalation_posts(policy, tick, episode)
    else:
        targets = _all_call(policy, tick, episode)
    return WAIT if targets is WAIT else Step(targets, escalation=True)


def _escalation_posts(policy: Policy, tick: Tick, episode: Episode) -> Targets | None:
    targets = [
        (position, agent)
        for position in policy.config.escalation_positions
        if position != episode.position and (agent := reachable(tick.branch, position)) is not None
    ]
    if any(position in tick.told for position, _ in targets):
        return WAIT
    return targets


def _all_call(policy: Policy, tick: Tick, episode: Episode) -> Targets | None:
    """One notice per intercom agent, at a post it reported: staffed ones first.

    An agent whose only known post is the empty one is called there.
    """
    branch = tick.branch
    by_agent: dict[str, list[int]] = {}
    for position, post in sorted(branch.posts.items()):
        if post.agent is not None and reachable(branch, position) is not None:
            by_agent.setdefault(post.agent, []).append(position)
    targets: Targets = []
    for agent, positions in sorted(by_agent.items()):
        others = [p for p in positions if p != episode.position] or positions
        others.sort(key=lambda p: not staffed(branch, p))  # stable: staffed first, by number
        free = [p for p in others if p not in tick.told]
        if not free:
            return WAIT
        targets.append((free[0], agent))
    return targets
