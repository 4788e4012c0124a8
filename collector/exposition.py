"""Prometheus text exposition (format 0.0.4) of the floor metrics.

Each branch's lines are rendered once per change into one fragment per
metric family and cached; a scrape joins the cached fragments family by
family (``# HELP``/``# TYPE`` once each, from the metric catalog
:mod:`branchwatch.contract.metrics`, families in its order), and re-renders
only the branches marked dirty since the previous scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from branchwatch.contract import metrics
from branchwatch.contract.ids import RATINGS
from branchwatch.contract.metrics import bucket_label
from collector.floor.agents import rebuilding
from collector.floor.branch import (
    COUNTER_STATES,
    LOST_REASONS,
    AgentState,
    BranchState,
    DeviceState,
    Histogram,
    ServiceState,
)
from collector.floor.config import FloorRules
from collector.floor.figures import INTERCOM_ACK_BUCKETS
from collector.notices.state import ACK_BUCKETS, IGNORED_ACK_REASONS, KINDS
from collector.notices.view import NoticeMetrics, notice_metrics

BranchKey = tuple[str, str]
_Row = TypeVar("_Row")  # a counter or a teller: one row of a labelled family


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _num(value: float) -> str:
    return repr(float(value))


class _Labels:
    """Label text that depends only on the config, built once."""

    def __init__(self, rules: FloorRules, notices: bool) -> None:
        self.service = {s: f',service="{_escape(s)}"' for s in rules.services}
        self.position = {p: f',position="{p}"' for p in rules.post_names}
        self.wait_le = _le_labels(rules.wait_buckets)
        self.service_le = _le_labels(rules.service_buckets)
        self.notices = notices  # render the notice families (else they stay empty)
        self.kind = {k: f',kind="{k}"' for k in KINDS}
        self.ack_le = _le_labels(ACK_BUCKETS)
        self.intercom_le = _le_labels(INTERCOM_ACK_BUCKETS)


def _le_labels(buckets: tuple[float, ...]) -> tuple[str, ...]:
    return (*(f',le="{bucket_label(b)}"' for b in buckets), ',le="+Inf"')


# A family's lines for one branch; ``p`` is the branch's region/branch label text.
Render = Callable[[_Labels, BranchState, str], str]
# A notice family's lines for one branch, from the branch's notice figures.
NoticeRender = Callable[[_Labels, NoticeMetrics, str], str]


def _branch_open(labels: _Labels, b: BranchState, p: str) -> str:
    return f"{metrics.BRANCH_OPEN.name}{{{p}}} {int(b.open)}\n"


def _branch_opened(labels: _Labels, b: BranchState, p: str) -> str:
    opened = b.opened_ts
    return "" if opened is None else f"{metrics.BRANCH_OPENED.name}{{{p}}} {_num(opened)}\n"


def _per_service(
    family: metrics.MetricFamily,
    labels: _Labels,
    b: BranchState,
    p: str,
    value: Callable[[ServiceState], object],
) -> str:
    head, svc = f"{family.name}{{{p}", labels.service
    return "".join(f"{head}{svc[s]}}} {value(st)}\n" for s, st in b.services.items())


def _queue_waiting(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.QUEUE_WAITING, labels, b, p, lambda st: len(st.queue))


def _queue_oldest(labels: _Labels, b: BranchState, p: str) -> str:
    head, svc = f"{metrics.QUEUE_OLDEST_ISSUED.name}{{{p}", labels.service
    return "".join(
        f"{head}{svc[s]}}} {_num(min(st.queue.values()))}\n"
        for s, st in b.services.items()
        if st.queue
    )


def _issued(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.TICKETS_ISSUED, labels, b, p, lambda st: st.issued)


def _served(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_service(metrics.TICKETS_SERVED, labels, b, p, lambda st: st.served)


def _lost(labels: _Labels, b: BranchState, p: str) -> str:
    head, svc = f"{metrics.TICKETS_LOST.name}{{{p}", labels.service
    return "".join(
        f'{head}{svc[s]},reason="{reason}"}} {st.lost[reason]}\n'
        for s, st in b.services.items()
        for reason in LOST_REASONS
    )


def _transferred(labels: _Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.TICKETS_TRANSFERRED.name}{{{p}"
    return "".join(
        f'{head},from_service="{_escape(source)}",to_service="{_escape(to)}"}} {n}\n'
        for source in sorted(b.transfers)
        for to, n in sorted(b.transfers[source].items())
    )


def _histogram(
    family: metrics.MetricFamily, p: str, service: str, les: tuple[str, ...], h: Histogram
) -> str:
    bucket = f"{family.bucket}{{{p}{service}"
    lines = []
    total = 0
    for le, count in zip(les, h.counts, strict=True):
        total += count
        lines.append(f"{bucket}{le}}} {total}\n")
    lines.append(f"{family.sum}{{{p}{service}}} {_num(h.sum)}\n")
    lines.append(f"{family.count}{{{p}{service}}} {h.count}\n")
    return "".join(lines)


def _wait(labels: _Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.wait_le
    return "".join(
        _histogram(metrics.WAIT_SECONDS, p, svc[s], les, st.wait) for s, st in b.services.items()
    )


def _service(labels: _Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.service_le
    return "".join(
        _histogram(metrics.SERVICE_SECONDS, p, svc[s], les, st.service)
        for s, st in b.services.items()
    )


def _counters(labels: _Labels, b: BranchState, p: str) -> str:
    per_state = dict.fromkeys(COUNTER_STATES, 0)
    for counter in b.counters.values():
        if counter.state is not None:
            per_state[counter.state] += 1
    head = f"{metrics.COUNTERS.name}{{{p}"
    return "".join(f'{head},state="{state}"}} {n}\n' for state, n in per_state.items())


def _staffed(labels: _Labels, b: BranchState, p: str) -> str:
    head, pos = f"{metrics.POSITION_STAFFED.name}{{{p}", labels.position
    return "".join(f"{head}{pos[n]}}} {len(post.staff)}\n" for n, post in b.posts.items())


def _post_changed(labels: _Labels, b: BranchState, p: str) -> str:
    head, pos = f"{metrics.POSITION_CHANGED.name}{{{p}", labels.position
    return "".join(f"{head}{pos[n]}}} {_num(post.changed_ts)}\n" for n, post in b.posts.items())


def _per_name(
    family: metrics.MetricFamily,
    p: str,
    label: str,
    rows: Mapping[str, _Row],
    value: Callable[[_Row], object],
) -> str:
    """One line per row (a counter, teller or agent, sorted by name), its ``value``."""
    head = f"{family.name}{{{p}"
    return "".join(f'{head},{label}="{_escape(n)}"}} {value(rows[n])}\n' for n in sorted(rows))


def _per_name_rating(
    family: metrics.MetricFamily,
    p: str,
    label: str,
    rows: Mapping[str, _Row],
    ratings: Callable[[_Row], Mapping[str, int]],
) -> str:
    """One line per row and rating."""
    head = f"{family.name}{{{p}"
    return "".join(
        f'{head},{label}="{_escape(n)}",rating="{rating}"}} {ratings(rows[n])[rating]}\n'
        for n in sorted(rows)
        for rating in RATINGS
    )


def _evaluations_requested(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_name(metrics.EVALUATIONS_REQUESTED, p, "counter", b.counters, lambda c: c.requested)


def _evaluations(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_name_rating(metrics.EVALUATIONS, p, "counter", b.counters, lambda c: c.ratings)


def _teller_evaluations(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_name_rating(metrics.TELLER_EVALUATIONS, p, "teller", b.tellers, lambda t: t.ratings)


def _teller_served(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_name(metrics.TELLER_SERVED, p, "teller", b.tellers, lambda t: t.served)


def _intercom_ack(labels: _Labels, b: BranchState, p: str) -> str:
    les, pairs = labels.intercom_le, b.intercom.ack_seconds
    return "".join(
        _histogram(
            metrics.INTERCOM_ACK_SECONDS,
            p,
            f',from_position="{source}",to_position="{to}"',
            les,
            pairs[source][to],
        )
        for source in sorted(pairs)
        for to in sorted(pairs[source])
    )


def _per_agent(
    family: metrics.MetricFamily, b: BranchState, p: str, value: Callable[[AgentState], object]
) -> str:
    return _per_name(family, p, "agent", b.agents, value)


def _agent_up(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_UP, b, p, lambda agent: int(agent.up))


def _spool_depth(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_SPOOL_DEPTH, b, p, lambda agent: agent.spool_depth)


def _last_seen(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_LAST_SEEN, b, p, lambda agent: _num(agent.last_seen))


def _agent_info(labels: _Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.AGENT_INFO.name}{{{p}"
    return "".join(
        f'{head},agent="{_escape(a)}",version="{_escape(version)}"}} 1\n'
        for a in sorted(b.agents)
        if (version := b.agents[a].version) is not None
    )


def _device_up(labels: _Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.DEVICE_UP.name}{{{p}"
    lines: list[str] = []
    for a in sorted(b.agents):
        agent = b.agents[a]
        for d in sorted(agent.devices):
            device = agent.devices[d]
            if device.kind is None:
                continue  # known from fault events only
            up = int(agent.up and device.link == "up")
            lines.append(
                f'{head},agent="{_escape(a)}",device="{_escape(d)}",'
                f'kind="{_escape(device.kind)}"}} {up}\n'
            )
    return "".join(lines)


def _per_device(
    head: str, b: BranchState, label: str, values: Callable[[DeviceState], Mapping[str, int]]
) -> str:
    """One line per agent, device and ``label`` value, all sorted."""
    lines: list[str] = []
    for a in sorted(b.agents):
        devices = b.agents[a].devices
        for d in sorted(devices):
            of_device = values(devices[d])
            lines.extend(
                f'{head},agent="{_escape(a)}",device="{_escape(d)}",'
                f'{label}="{_escape(k)}"}} {of_device[k]}\n'
                for k in sorted(of_device)
            )
    return "".join(lines)


def _device_fault(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_device(
        f"{metrics.DEVICE_FAULT.name}{{{p}",
        b,
        "fault",
        lambda device: {f: int(state.active) for f, state in device.faults.items()},
    )


def _bad_frames(labels: _Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.AGENT_BAD_FRAMES.name}{{{p}"
    return _per_device(head, b, "reason", lambda device: device.bad_frames)


def _rebuilding(labels: _Labels, b: BranchState, p: str) -> str:
    return f"{metrics.BRANCH_REBUILDING.name}{{{p}}} {int(rebuilding(b))}\n"


def _events_missing(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_MISSING, b, p, lambda agent: len(agent.missing))


def _events_lost(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_LOST, b, p, lambda agent: agent.events_lost)


def _events_refused(labels: _Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_REFUSED, b, p, lambda agent: agent.events_refused)


def _notices_total(labels: _Labels, n: NoticeMetrics, p: str) -> str:
    head, kind = f"{metrics.NOTICES.name}{{{p}", labels.kind
    return "".join(
        f'{head}{kind[k]},outcome="{outcome}"}} {total}\n'
        for (k, outcome), total in n.totals.items()
    )


def _notice_open(labels: _Labels, n: NoticeMetrics, p: str) -> str:
    head, kind = f"{metrics.NOTICE_OPEN.name}{{{p}", labels.kind
    return "".join(f"{head}{kind[k]}}} {count}\n" for k, count in n.open.items())


def _notice_unanswered(labels: _Labels, n: NoticeMetrics, p: str) -> str:
    head, kind, since = f"{metrics.NOTICE_UNANSWERED.name}{{{p}", labels.kind, n.unanswered_since
    return "".join(f"{head}{kind[k]}}} {_num(since[k])}\n" for k in KINDS if k in since)


def _notice_ack(labels: _Labels, n: NoticeMetrics, p: str) -> str:
    kind, les = labels.kind, labels.ack_le
    return "".join(
        _histogram(metrics.NOTICE_ACK_SECONDS, p, kind[k], les, h) for k, h in n.ack_seconds.items()
    )


RENDERERS: Final[Mapping[metrics.MetricFamily, Render]] = {
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
    metrics.AGENT_UP: _agent_up,
    metrics.AGENT_SPOOL_DEPTH: _spool_depth,
    metrics.AGENT_LAST_SEEN: _last_seen,
    metrics.AGENT_INFO: _agent_info,
    metrics.DEVICE_UP: _device_up,
    metrics.DEVICE_FAULT: _device_fault,
    metrics.AGENT_BAD_FRAMES: _bad_frames,
    metrics.BRANCH_REBUILDING: _rebuilding,
    metrics.AGENT_EVENTS_MISSING: _events_missing,
    metrics.AGENT_EVENTS_LOST: _events_lost,
    metrics.AGENT_EVENTS_REFUSED: _events_refused,
}
# Rendered only when the collector sends floor notices.
NOTICE_RENDERERS: Final[Mapping[metrics.MetricFamily, NoticeRender]] = {
    metrics.NOTICES: _notices_total,
    metrics.NOTICE_OPEN: _notice_open,
    metrics.NOTICE_UNANSWERED: _notice_unanswered,
    metrics.NOTICE_ACK_SECONDS: _notice_ack,
}

# Any family's lines for one branch, given its notice figures (None: notices are off).
_AnyRender = Callable[[_Labels, BranchState, str, NoticeMetrics | None], str]


def _of_branch(render: Render) -> _AnyRender:
    return lambda labels, b, p, n: render(labels, b, p)


def _of_notices(render: NoticeRender) -> _AnyRender:
    return lambda labels, b, p, n: "" if n is None else render(labels, n, p)


def _in_catalog_order() -> tuple[_AnyRender, ...]:
    """The renderers in the catalog's floor order; a family without one stops the import."""
    known = {**RENDERERS, **NOTICE_RENDERERS}
    missing = [f.name for f in metrics.FLOOR if f not in known]
    extra = [f.name for f in known if f not in metrics.FLOOR]
    if missing or extra:
        raise RuntimeError(
            f"collector/exposition.py: no renderer for {missing}, renderers outside "
            f"the catalog's floor families: {extra}"
        )
    return tuple(
        _of_branch(RENDERERS[family])
        if family in RENDERERS
        else _of_notices(NOTICE_RENDERERS[family])
        for family in metrics.FLOOR
    )


RENDER_ORDER: Final = _in_catalog_order()
HEADERS: Final = tuple(family.header.encode() for family in metrics.FLOOR)


def render_branch(labels: _Labels, branch: BranchState) -> tuple[bytes, ...]:
    """One text fragment per family (in the catalog's floor order) for one branch.

    Fragments are kept as bytes: a scrape then joins bytes and sends them, and
    never encodes the whole region's text (tens of MB) again.
    """
    p = f'region="{_escape(branch.region)}",branch="{_escape(branch.branch)}"'
    figures = notice_metrics(branch.notices) if labels.notices else None
    return tuple(render(labels, branch, p, figures).encode() for render in RENDER_ORDER)


class Exposition:
    """Per-branch, per-family fragment cache; re-renders only dirty branches.

    ``notices``: the collector sends floor notices, so every branch renders the
    notice families (off: they are declared but have no series).
    """

    def __init__(self, rules: FloorRules, *, notices: bool = False) -> None:
        self._labels = _Labels(rules, notices)
        self._fragments: dict[BranchKey, tuple[bytes, ...]] = {}
        self._dirty: set[BranchKey] = set()
        self._order: list[BranchKey] | None = []
        self._chunks: list[bytes] | None = None
        # Intercom acks the notice engine ignored, summed over the branches as rendered
        # (the collector exports the sum: per branch they would cost the series budget).
        # Every reason is present, so a reader on another thread never sees it resize.
        self.acks_ignored: dict[str, int] = dict.fromkeys(IGNORED_ACK_REASONS, 0)
        self._acks_seen: dict[BranchKey, dict[str, int]] = {}

    def mark_dirty(self, key: BranchKey) -> None:
        self._dirty.add(key)

    def forget(self, key: BranchKey) -> None:
        """The branch is gone: its lines disappear from the next render."""
        self._dirty.discard(key)
        self._acks_seen.pop(key, None)  # its acks stay in the sum: a counter never falls
        if self._fragments.pop(key, None) is not None:
            self._order = None
            self._chunks = None

    def _add_acks(self, key: BranchKey, ignored: Mapping[str, int]) -> None:
        """Add what a branch's ignored-ack counts grew by since it was last rendered.

        A branch restored from a snapshot adds its whole count at its first render, so
        the sum carries over a restart as the branch counts do.
        """
        if not ignored:
            return
        seen = self._acks_seen.setdefault(key, {})
        total = self.acks_ignored
        for reason, count in ignored.items():
            grown = count - seen.get(reason, 0)
            if grown > 0 and reason in total:
                total[reason] += grown
            seen[reason] = count

    def fragments(self, key: BranchKey) -> tuple[bytes, ...] | None:
        """The cached fragments of one branch (as of the last render)."""
        return self._fragments.get(key)

    def render(self, branches: Mapping[BranchKey, BranchState]) -> bytes:
        """The whole exposition as one bytes object (tests, small stores)."""
        return b"".join(self.render_chunks(branches))

    def render_chunks(self, branches: Mapping[BranchKey, BranchState]) -> list[bytes]:
        """The exposition as the cached fragments in order, not joined.

        A region's exposition is tens of MB: joining it would allocate (and
        page-fault) a fresh buffer per scrape. The HTTP handler instead hands
        these chunks to the kernel with ``sendmsg`` (scatter/gather). Callers
        must not modify the list.
        """
        fragments = self._fragments
        if self._dirty:
            labels = self._labels
            for key in self._dirty:
                branch = branches.get(key)
                if branch is None:
                    continue
                if key not in fragments:
                    self._order = None
                fragments[key] = render_branch(labels, branch)
                self._add_acks(key, branch.notices.ignored_acks)
            self._dirty.clear()
            self._chunks = None
        if self._chunks is not None:
            return self._chunks
        if self._order is None:
            self._order = sorted(fragments)
        ordered = [fragments[key] for key in self._order]
        chunks: list[bytes] = []
        if not ordered:
            chunks.extend(HEADERS)
        else:
            for header, column in zip(HEADERS, zip(*ordered, strict=True), strict=True):
                chunks.append(header)
                chunks.extend(column)
        self._chunks = chunks
        return chunks
