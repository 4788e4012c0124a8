"""Prometheus text exposition (format 0.0.4) of the floor metrics (DESIGN §5).

Each branch's lines are rendered once per change into one fragment per
metric family and cached; a scrape joins the cached fragments family by
family (``# HELP``/``# TYPE`` once each, families in DESIGN §5 order), and
re-renders only the branches marked dirty since the previous scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from branchwatch.contract.ids import RATINGS
from collector.floor.branch import COUNTER_STATES, LOST_REASONS, BranchState, Histogram
from collector.floor.config import FloorRules

BranchKey = tuple[str, str]


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _num(value: float) -> str:
    return repr(float(value))


class _Labels:
    """Label text that depends only on the config, built once."""

    def __init__(self, rules: FloorRules) -> None:
        self.service = {s: f',service="{_escape(s)}"' for s in rules.services}
        self.position = {p: f',position="{p}"' for p in rules.post_names}
        self.wait_le = _le_labels(rules.wait_buckets)
        self.service_le = _le_labels(rules.service_buckets)


def _go_float(value: float) -> str:
    """A bucket bound as prometheus_client writes it (``60.0``, ``1e+06``)."""
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def _le_labels(buckets: tuple[float, ...]) -> tuple[str, ...]:
    return (*(f',le="{_go_float(b)}"' for b in buckets), ',le="+Inf"')


Render = Callable[[_Labels, BranchState, str], str]


class Family(NamedTuple):
    name: str
    type: str
    help: str
    render: Render

    @property
    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type}\n"


def _branch_open(labels: _Labels, b: BranchState, p: str) -> str:
    return f"branchwatch_branch_open{{{p}}} {int(b.open)}\n"


def _queue_waiting(labels: _Labels, b: BranchState, p: str) -> str:
    svc = labels.service
    return "".join(
        f"branchwatch_queue_waiting{{{p}{svc[s]}}} {len(st.queue)}\n"
        for s, st in b.services.items()
    )


def _queue_oldest(labels: _Labels, b: BranchState, p: str) -> str:
    svc = labels.service
    return "".join(
        f"branchwatch_queue_oldest_issued_timestamp_seconds{{{p}{svc[s]}}} "
        f"{_num(min(st.queue.values()))}\n"
        for s, st in b.services.items()
        if st.queue
    )


def _issued(labels: _Labels, b: BranchState, p: str) -> str:
    svc = labels.service
    return "".join(
        f"branchwatch_tickets_issued_total{{{p}{svc[s]}}} {st.issued}\n"
        for s, st in b.services.items()
    )


def _served(labels: _Labels, b: BranchState, p: str) -> str:
    svc = labels.service
    return "".join(
        f"branchwatch_tickets_served_total{{{p}{svc[s]}}} {st.served}\n"
        for s, st in b.services.items()
    )


def _lost(labels: _Labels, b: BranchState, p: str) -> str:
    svc = labels.service
    return "".join(
        f'branchwatch_tickets_lost_total{{{p}{svc[s]},reason="{reason}"}} {st.lost[reason]}\n'
        for s, st in b.services.items()
        for reason in LOST_REASONS
    )


def _histogram(name: str, p: str, service: str, les: tuple[str, ...], h: Histogram) -> str:
    lines = []
    total = 0
    for le, count in zip(les, h.counts, strict=True):
        total += count
        lines.append(f"{name}_bucket{{{p}{service}{le}}} {total}\n")
    lines.append(f"{name}_sum{{{p}{service}}} {_num(h.sum)}\n")
    lines.append(f"{name}_count{{{p}{service}}} {h.count}\n")
    return "".join(lines)


def _wait(labels: _Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.wait_le
    return "".join(
        _histogram("branchwatch_wait_seconds", p, svc[s], les, st.wait)
        for s, st in b.services.items()
    )


def _service(labels: _Labels, b: BranchState, p: str) -> str:
    svc, les = labels.service, labels.service_le
    return "".join(
        _histogram("branchwatch_service_seconds", p, svc[s], les, st.service)
        for s, st in b.services.items()
    )


def _counters(labels: _Labels, b: BranchState, p: str) -> str:
    per_state = dict.fromkeys(COUNTER_STATES, 0)
    for counter in b.counters.values():
        if counter.state is not None:
            per_state[counter.state] += 1
    return "".join(
        f'branchwatch_counters{{{p},state="{state}"}} {n}\n' for state, n in per_state.items()
    )


def _staffed(labels: _Labels, b: BranchState, p: str) -> str:
    pos = labels.position
    return "".join(
        f"branchwatch_position_staffed{{{p}{pos[n]}}} {len(post.staff)}\n"
        for n, post in b.posts.items()
    )


def _post_changed(labels: _Labels, b: BranchState, p: str) -> str:
    pos = labels.position
    return "".join(
        f"branchwatch_position_changed_timestamp_seconds{{{p}{pos[n]}}} {_num(post.changed_ts)}\n"
        for n, post in b.posts.items()
    )


def _evaluations_requested(labels: _Labels, b: BranchState, p: str) -> str:
    return "".join(
        f'branchwatch_evaluations_requested_total{{{p},counter="{_escape(c)}"}} '
        f"{b.counters[c].requested}\n"
        for c in sorted(b.counters)
    )


def _evaluations(labels: _Labels, b: BranchState, p: str) -> str:
    return "".join(
        f'branchwatch_evaluations_total{{{p},counter="{_escape(c)}",rating="{rating}"}} '
        f"{b.counters[c].ratings[rating]}\n"
        for c in sorted(b.counters)
        for rating in RATINGS
    )


def _agent_up(labels: _Labels, b: BranchState, p: str) -> str:
    return "".join(
        f'branchwatch_agent_up{{{p},agent="{_escape(a)}"}} {int(b.agents[a].up)}\n'
        for a in sorted(b.agents)
    )


def _spool_depth(labels: _Labels, b: BranchState, p: str) -> str:
    return "".join(
        f'branchwatch_agent_spool_depth{{{p},agent="{_escape(a)}"}} {b.agents[a].spool_depth}\n'
        for a in sorted(b.agents)
    )


def _last_seen(labels: _Labels, b: BranchState, p: str) -> str:
    return "".join(
        f'branchwatch_agent_last_seen_timestamp_seconds{{{p},agent="{_escape(a)}"}} '
        f"{_num(b.agents[a].last_seen)}\n"
        for a in sorted(b.agents)
    )


def _device_up(labels: _Labels, b: BranchState, p: str) -> str:
    lines: list[str] = []
    for a in sorted(b.agents):
        agent = b.agents[a]
        for d in sorted(agent.devices):
            device = agent.devices[d]
            if device.kind is None:
                continue  # known from fault events only
            up = int(agent.up and device.link == "up")
            lines.append(
                f'branchwatch_device_up{{{p},agent="{_escape(a)}",device="{_escape(d)}",'
                f'kind="{_escape(device.kind)}"}} {up}\n'
            )
    return "".join(lines)


def _device_fault(labels: _Labels, b: BranchState, p: str) -> str:
    lines: list[str] = []
    for a in sorted(b.agents):
        devices = b.agents[a].devices
        for d in sorted(devices):
            faults = devices[d].faults
            lines.extend(
                f'branchwatch_device_fault{{{p},agent="{_escape(a)}",device="{_escape(d)}",'
                f'fault="{_escape(f)}"}} {int(faults[f].active)}\n'
                for f in sorted(faults)
            )
    return "".join(lines)


FAMILIES: Final = (
    Family("branchwatch_branch_open", "gauge", "1 while the branch is open.", _branch_open),
    Family("branchwatch_queue_waiting", "gauge", "Tickets waiting to be called.", _queue_waiting),
    Family(
        "branchwatch_queue_oldest_issued_timestamp_seconds",
        "gauge",
        "Since when (event time, Unix seconds) the longest-waiting ticket waits; "
        "absent while the queue is empty.",
        _queue_oldest,
    ),
    Family("branchwatch_tickets_issued_total", "counter", "Tickets issued.", _issued),
    Family(
        "branchwatch_tickets_served_total", "counter", "Tickets whose service started.", _served
    ),
    Family(
        "branchwatch_tickets_lost_total",
        "counter",
        "Tickets that ended without service: no_show, walkout, or still waiting at closing.",
        _lost,
    ),
    Family(
        "branchwatch_wait_seconds",
        "histogram",
        "Wait from issue (or transfer) until called, in seconds.",
        _wait,
    ),
    Family(
        "branchwatch_service_seconds",
        "histogram",
        "Service time from start to end, in seconds.",
        _service,
    ),
    Family("branchwatch_counters", "gauge", "Counters per state.", _counters),
    Family(
        "branchwatch_position_staffed",
        "gauge",
        "Staff checked in at the lobby post (0 = empty).",
        _staffed,
    ),
    Family(
        "branchwatch_position_changed_timestamp_seconds",
        "gauge",
        "When (event time, Unix seconds) the post was last staffed or vacated, "
        "or the branch opened while it was empty.",
        _post_changed,
    ),
    Family(
        "branchwatch_evaluations_requested_total",
        "counter",
        "Ratings requested on the counter's evaluator pad.",
        _evaluations_requested,
    ),
    Family(
        "branchwatch_evaluations_total",
        "counter",
        "Ratings submitted on the counter's evaluator pad.",
        _evaluations,
    ),
    Family("branchwatch_agent_up", "gauge", "1 while the edge agent is online.", _agent_up),
    Family(
        "branchwatch_agent_spool_depth",
        "gauge",
        "Events in the agent's spool not yet acknowledged by the broker.",
        _spool_depth,
    ),
    Family(
        "branchwatch_agent_last_seen_timestamp_seconds",
        "gauge",
        "Time (Unix seconds) of the latest event or status from the agent.",
        _last_seen,
    ),
    Family(
        "branchwatch_device_up",
        "gauge",
        "1 while the agent is online and reports the device's link up.",
        _device_up,
    ),
    Family(
        "branchwatch_device_fault",
        "gauge",
        "1 while the device reports the fault, 0 once it recovered.",
        _device_fault,
    ),
)
HEADERS: Final = tuple(family.header.encode() for family in FAMILIES)


def render_branch(labels: _Labels, branch: BranchState) -> tuple[bytes, ...]:
    """One text fragment per family (in :data:`FAMILIES` order) for one branch.

    Fragments are kept as bytes: a scrape then joins bytes and sends them, and
    never encodes the whole region's text (tens of MB) again.
    """
    p = f'region="{_escape(branch.region)}",branch="{_escape(branch.branch)}"'
    return tuple(family.render(labels, branch, p).encode() for family in FAMILIES)


class Exposition:
    """Per-branch, per-family fragment cache; re-renders only dirty branches."""

    def __init__(self, rules: FloorRules) -> None:
        self._labels = _Labels(rules)
        self._fragments: dict[BranchKey, tuple[bytes, ...]] = {}
        self._dirty: set[BranchKey] = set()
        self._order: list[BranchKey] | None = []
        self._chunks: list[bytes] | None = None

    def mark_dirty(self, key: BranchKey) -> None:
        self._dirty.add(key)

    def forget(self, key: BranchKey) -> None:
        """The branch is gone: its lines disappear from the next render."""
        self._dirty.discard(key)
        if self._fragments.pop(key, None) is not None:
            self._order = None
            self._chunks = None

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
