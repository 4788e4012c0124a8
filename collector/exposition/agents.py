"""The renderers of the agents' and devices' families, the rebuild flag and the floor
notices (one family's lines for one branch each)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from branchwatch.contract import metrics
from collector.exposition.floor import Render
from collector.exposition.text import Labels, escape, histogram, num, per_name
from collector.floor.agents import rebuilding
from collector.floor.branch import AgentState, BranchState, DeviceState
from collector.notices.state import KINDS
from collector.notices.view import NoticeMetrics

# A notice family's lines for one branch, from the branch's notice figures.
NoticeRender = Callable[[Labels, NoticeMetrics, str], str]


def _per_agent(
    family: metrics.MetricFamily, b: BranchState, p: str, value: Callable[[AgentState], object]
) -> str:
    return per_name(family, p, "agent", b.agents, value)


def _agent_up(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_UP, b, p, lambda agent: int(agent.up))


def _spool_depth(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_SPOOL_DEPTH, b, p, lambda agent: agent.spool_depth)


def _last_seen(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_LAST_SEEN, b, p, lambda agent: num(agent.last_seen))


def _agent_info(labels: Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.AGENT_INFO.name}{{{p}"
    return "".join(
        f'{head},agent="{escape(a)}",version="{escape(version)}"}} 1\n'
        for a in sorted(b.agents)
        if (version := b.agents[a].version) is not None
    )


def _device_up(labels: Labels, b: BranchState, p: str) -> str:
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
                f'{head},agent="{escape(a)}",device="{escape(d)}",'
                f'kind="{escape(device.kind)}"}} {up}\n'
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
                f'{head},agent="{escape(a)}",device="{escape(d)}",'
                f'{label}="{escape(k)}"}} {of_device[k]}\n'
                for k in sorted(of_device)
            )
    return "".join(lines)


def _device_fault(labels: Labels, b: BranchState, p: str) -> str:
    return _per_device(
        f"{metrics.DEVICE_FAULT.name}{{{p}",
        b,
        "fault",
        lambda device: {f: int(state.active) for f, state in device.faults.items()},
    )


def _bad_frames(labels: Labels, b: BranchState, p: str) -> str:
    head = f"{metrics.AGENT_BAD_FRAMES.name}{{{p}"
    return _per_device(head, b, "reason", lambda device: device.bad_frames)


def _rebuilding(labels: Labels, b: BranchState, p: str) -> str:
    return f"{metrics.BRANCH_REBUILDING.name}{{{p}}} {int(rebuilding(b))}\n"


def _events_missing(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_MISSING, b, p, lambda agent: len(agent.missing))


def _events_lost(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_LOST, b, p, lambda agent: agent.events_lost)


def _events_refused(labels: Labels, b: BranchState, p: str) -> str:
    return _per_agent(metrics.AGENT_EVENTS_REFUSED, b, p, lambda agent: agent.events_refused)


def _notices_total(labels: Labels, n: NoticeMetrics, p: str) -> str:
    head, kind = f"{metrics.NOTICES.name}{{{p}", labels.kind
    return "".join(
        f'{head}{kind[k]},outcome="{outcome}"}} {total}\n'
        for (k, outcome), total in n.totals.items()
    )


def _notice_open(labels: Labels, n: NoticeMetrics, p: str) -> str:
    head, kind = f"{metrics.NOTICE_OPEN.name}{{{p}", labels.kind
    return "".join(f"{head}{kind[k]}}} {count}\n" for k, count in n.open.items())


def _notice_unanswered(labels: Labels, n: NoticeMetrics, p: str) -> str:
    head, kind, since = f"{metrics.NOTICE_UNANSWERED.name}{{{p}", labels.kind, n.unanswered_since
    return "".join(f"{head}{kind[k]}}} {num(since[k])}\n" for k in KINDS if k in since)


def _notice_ack(labels: Labels, n: NoticeMetrics, p: str) -> str:
    kind, les = labels.kind, labels.ack_le
    return "".join(
        histogram(metrics.NOTICE_ACK_SECONDS, p, kind[k], les, h) for k, h in n.ack_seconds.items()
    )


AGENT_RENDERERS: Final[Mapping[metrics.MetricFamily, Render]] = {
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
