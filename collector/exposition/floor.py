"""The renderers of the floor's own families: the branch, queues, tickets, counters,
posts, ratings and intercom calls (one family's lines for one branch each)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from branchwatch.contract import metrics
from collector.exposition.text import (
    Labels,
    escape,
    histogram,
    num,
    per_name,
    per_name_rating,
)
from collector.floor.branch import COUNTER_STATES, LOST_REASONS, BranchState, ServiceState

# A family's lines for one branch; ``p`` is the branch's region/branch label text.
Render = Callable[[Labels, BranchState, str], str]


def _branch_open(labels: Labels, b: BranchState, p: str) -> str:
    return f"{metrics.BRANCH_OPEN.name}{{{p}}} {int(b.open)}\n"


def _branch_opened(labels: Labels, b: BranchState, p: str) -> str:
    opened = b.opened_ts
    return "" if opened is None else f"{metrics.BRANCH_OPENED.name}{{{p}}} {num(opened)}\n"


def _per_service(
    family: metrics.MetricFamily,
    labels: Labels,
    b: BranchState,
    p: str,
    value: Callable[[ServiceState], object],
) -> str:
    head, svc = f"{family.name}{{{p}", labels.service
    return "".join(f"{head}{svc[s]}}} {value(st)}\n" for s, st in b.services.items())


def _queue_waiting(labels: Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.QUEUE_WAITING, labels, b, p, lambda st: len(st.queue))


def _queue_oldest(labels: Labels, b: BranchState, p: str) -> str:
    head, svc = f"{metrics.QUEUE_OLDEST_ISSUED.name}{{{p}", labels.service
    return "".join(
        f"{head}{svc[s]}}} {num(min(st.queue.values()))}\n"
        for s, st in b.services.items()
        if st.queue
    )


def _issued(labels: Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.TICKETS_ISSUED, labels, b, p, lambda st: st.issued)


def _served(labels: Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.TICKETS_SERVED, labels, b, p, lambda st: st.served)


def _lost(labels: Labels, b: BranchState, p: str) -> str:
    head, svc = f"{metrics.TICKETS_LOST.name}{{{p}", labels.service
    return "".join(
        f'{head}{svc[s]},reason="{reason}"}} {count}\n'
        for s, st in b.services.items()
        for reason, count in zip(LOST_REASONS, st.lost.counts(), strict=True)
    )


def _transferred(labels: Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.TICKETS_TRANSFERRED.name}{{{p}"
    return "".join(
        f'{head},from_service="{escape(source)}",to_service="{escape(to)}"}} {n}\n'
        for source in sorted(b.transfers)
        for to, n in sorted(b.transfers[source].items())
    )


def _wait(labels: Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.wait_le
    return "".join(
        histogram(metrics.WAIT_SECONDS, p, svc[s], les, st.wait) for s, st in b.services.items()
    )


def _service(labels: Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.service_le
    return "".join(
        histogram(metrics.SERVICE_SECONDS, p, svc[s], les, st.service)
        for s, st in b.services.items()
    )


def _counters(labels: Labels, b: BranchState, p: str) -> str:
    per_state = dict.fromkeys(COUNTER_STATES, 0)
    for counter in b.counters.values():
        if counter.state is not None:
            per_state[counter.state] += 1
    head = f"{metrics.COUNTERS.name}{{{p}"
    return "".join(f'{head},state="{state}"}} {n}\n' for state, n in per_state.items())


def _staffed(labels: Labels, b: BranchState, p: str) -> str:
    head, pos = f"{metrics.POSITION_STAFFED.name}{{{p}", labels.position
    return "".join(f"{head}{pos[n]}}} {len(post.staff)}\n" for n, post in b.posts.items())


def _post_changed(labels: Labels, b: BranchState, p: str) -> str:
    head, pos = f"{metrics.POSITION_CHANGED.name}{{{p}", labels.position
    return "".join(f"{head}{pos[n]}}} {num(post.changed_ts)}\n" for n, post in b.posts.items())


def _evaluations_requested(labels: Labels, b: BranchState, p: str) -> str:
    return per_name(metrics.EVALUATIONS_REQUESTED, p, "counter", b.counters, lambda c: c.requested)


def _evaluations(labels: Labels, b: BranchState, p: str) -> str:
    return per_name_rating(metrics.EVALUATIONS, p, "counter", b.counters, lambda c: c.ratings)


def _teller_evaluations(labels: Labels, b: BranchState, p: str) -> str:
    return per_name_rating(metrics.TELLER_EVALUATIONS, p, "teller", b.tellers, lambda t: t.ratings)


def _teller_served(labels: Labels, b: BranchState, p: str) -> str:
    return per_name(metrics.TELLER_SERVED, p, "teller", b.tellers, lambda t: t.served)


def _intercom_ack(labels: Labels, b: BranchState, p: str) -> str:
    les = labels.intercom_le
    return "".join(
        histogram(
            metrics.INTERCOM_ACK_SECONDS,
            p,
            f',from_position="{pair.source}",to_position="{pair.target}"',
            les,
            pair.seconds,
        )
        for pair in b.intercom.pairs  # sorted by (source, target)
    )


FLOOR_RENDERERS: Final[Mapping[metrics.MetricFamily, Render]] = {
    metrics.BRANCH_OPEN: _branch_open,
    metrics.BRANCH_OPENED: _branch_opened,
    metrics.QUEUE_WAITING: _queue_waiting,
    metrics.QUEUE_OLDEST_ISSUED: _queue_oldest,
    metrics.TICKETS_ISSUED: _issued,
    metrics.TICKETS_SERVED: _served,
    metrics.TICKETS_LOST: _lost,
    metrics.TICKETS_TRANSFERRED: _transferred,
    metrics.WAIT_SECONDS: _wait,
    metrics.SERVICE_SECONDS: _service,
    metrics.COUNTERS: _counters,
    metrics.POSITION_STAFFED: _staffed,
    metrics.POSITION_CHANGED: _post_changed,
    metrics.EVALUATIONS_REQUESTED: _evaluations_requested,
    metrics.EVALUATIONS: _evaluations,
    metrics.TELLER_EVALUATIONS: _teller_evaluations,
    metrics.TELLER_SERVED: _teller_served,
    metrics.INTERCOM_ACK_SECONDS: _intercom_ack,
}
