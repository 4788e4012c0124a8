"""Edge agents and their devices: status, session rule, seq gaps, device faults."""

from __future__ import annotations

import sys
from typing import Final, NamedTuple

from branchwatch.contract.events import DeviceFault, DeviceRecovered
from branchwatch.contract.messages import Status
from branchwatch.contract.seqs import is_new_spool, spool_start
from collector.floor.branch import AgentState, BranchState, DeviceState, FaultState
from collector.floor.config import FloorRules

# Seqs remembered as missing per agent; beyond, the oldest are given up (counted lost).
MAX_MISSING_PER_AGENT: Final = 10_000


class NewSpool(NamedTuple):
    """An agent began a new spool: what its log line says."""

    agent: str
    last_seq: int  # the old spool's newest seq the collector had
    seq: int  # the new spool's seq that showed it
    first_seq: int  # the new spool's first seq
    lost: int  # the old spool's missing seqs, now lost


def record_gap(
    agent: AgentState, last: int, seq: int, new_spools: list[NewSpool] | None = None
) -> int:
    """Remember the seqs skipped between ``last`` and ``seq``; return how many were skipped.

    Every seq counted here ends filled (a late event), still missing, or lost: the
    ones beyond :data:`MAX_MISSING_PER_AGENT` are lost at once. A jump to a new spool
    (:func:`~branchwatch.contract.seqs.is_new_spool`) is no gap of ~10^15 seqs: the
    old spool's missing seqs went with it (lost now), only the new spool's seqs
    before ``seq`` are skipped, and the switch is appended to ``new_spools`` (for the
    caller's log line; the pure model logs nothing).
    """
    if not is_new_spool(last, seq):
        return _skip(agent, last + 1, seq)
    lost = len(agent.missing)
    skipped = new_spool(agent, seq)
    if new_spools is not None:
        new_spools.append(NewSpool(agent.name, last, seq, spool_start(seq), lost))
    return skipped


def new_spool(agent: AgentState, seq: int) -> int:
    """``seq`` comes from a new spool of ``agent``: its old missing seqs are lost for good.

    Returns how many seqs of the new spool were skipped before ``seq`` (from
    :func:`~branchwatch.contract.seqs.spool_start`, at most
    :data:`MAX_MISSING_PER_AGENT` remembered); they are missing as any gap's.
    """
    agent.events_lost += len(agent.missing)
    agent.missing.clear()
    agent.spools_started += 1
    first = agent.spool_first_seq = spool_start(seq)
    return _skip(agent, first, seq)


def describe_new_spool(switch: NewSpool) -> str:
    """What a log line says of a new spool (after where it was: region/branch[/agent])."""
    return (
        f"agent {switch.agent} began a new spool (its old one was lost): seq "
        f"{switch.seq} after {switch.last_seq}, the new spool starting at {switch.first_seq}; "
        f"{switch.lost} seqs still missing from the old spool are lost"
    )


def _skip(agent: AgentState, first_skipped: int, seq: int) -> int:
    """Mark ``first_skipped`` up to ``seq`` (excluded) missing, within the bound; the count."""
    missing = agent.missing
    first = max(first_skipped, seq - MAX_MISSING_PER_AGENT)
    for skipped in range(first, seq):
        missing[skipped] = None
    lost = first - first_skipped
    excess = len(missing) - MAX_MISSING_PER_AGENT
    if excess > 0:
        for oldest in list(missing)[:excess]:
            del missing[oldest]
        lost += excess
    agent.events_lost += lost
    return seq - first_skipped


def rebuilding(branch: BranchState) -> bool:
    """Whether an agent of the branch is being rebuilt from its replay (collector/rebuild.py)."""
    return any(agent.rebuilding for agent in branch.agents.values())


def apply_status(
    rules: FloorRules,
    branch: BranchState,
    agent: AgentState,
    status: Status,
    received: float,
    refused: dict[str, int] | None = None,
) -> bool:
    """Apply an agent's status (``agent`` may not be in ``branch.agents`` yet).

    False when it is ignored: a session older than the known one (a late will
    of a previous connection), or, within one session, a status older than the
    last one; or refused: more devices in the branch than ``max_devices``
    (counted in ``refused`` by reason). Bad-frame reasons beyond the branch's
    ``max_bad_frame_series`` are left out of an applied status, and counted.
    """
    if agent.session is not None:
        if status.session < agent.session:
            return False
        if (
            status.session == agent.session
            and status.ts is not None
            and agent.status_ts is not None
            and status.ts < agent.status_ts
        ):
            return False
    others = [other for other in branch.agents.values() if other is not agent]
    online = status.state == "online"
    if online:
        keep = {name for name, device in agent.devices.items() if device.faults}
        other_devices = sum(len(other.devices) for other in others)
        if len(keep | status.devices.keys()) + other_devices > rules.max_devices:
            count(refused, "too_many_devices")
            return False
    agent.session = status.session
    agent.up = online
    if status.ts is not None:
        agent.status_ts = status.ts
    agent.last_seen = max(agent.last_seen, received)
    if status.version is not None:
        agent.version = status.version
    if status.spool is not None:
        agent.spool_depth = status.spool.depth
        agent.spool_oldest_ts = status.spool.oldest_ts
        agent.spool_dropped = status.spool.dropped
        agent.events_refused = status.spool.refused
    if online:
        _replace_devices(agent, status)
        room = rules.max_bad_frame_series - sum(_bad_frame_series(other) for other in others)
        left_out = _take_bad_frames(agent, status, room)
        if left_out:
            count(refused, "too_many_bad_frame_series", left_out)
    return True


def count(refused: dict[str, int] | None, reason: str, n: int = 1) -> None:
    if refused is not None:
        refused[reason] = refused.get(reason, 0) + n


def heard_events(agent: AgentState, last_seq: int | None, last_seen: float, *, news: bool) -> None:
    """The agent sent events (its newest seq and event time now those given).

    An agent that sends events is up, until an offline status says otherwise:
    its messages reach the collector in the order it sent them and its will
    comes after the last one, so events after an offline status mean it is back.
    A message of duplicates only (``news`` False) changes nothing.
    """
    agent.last_seq = last_seq
    agent.last_seen = last_seen
    if news:
        agent.up = True


def _bad_frame_series(agent: AgentState) -> int:
    return sum(len(device.bad_frames) for device in agent.devices.values())


def _take_bad_frames(agent: AgentState, status: Status, room: int) -> int:
    """Each device's bad frames from an online status; how many reasons had no room.

    A reason already exported keeps its series, so a counter never jumps from
    one series to another; new ones take the room left, in name order.
    """
    room -= sum(
        len(device.bad_frames.keys() & status.devices[name].bad_frames.keys())
        for name, device in agent.devices.items()
        if name in status.devices
    )
    left_out = 0
    for name in sorted(status.devices):
        device, reported = agent.devices[name], status.devices[name].bad_frames
        kept = {reason: reported[reason] for reason in device.bad_frames if reason in reported}
        for reason in sorted(reported.keys() - kept.keys()):
            if room > 0:
                kept[reason] = reported[reason]
                room -= 1
            else:
                left_out += 1
        device.bad_frames = kept
        device.bad_frames_refused = len(reported) - len(kept)
    return left_out


def _replace_devices(agent: AgentState, status: Status) -> None:
    """An online status lists every device; one it no longer lists keeps only its faults."""
    devices = agent.devices
    for name in list(devices):
        if name not in status.devices:
            gone = devices[name]
            if gone.faults:
                gone.kind = gone.link = None
                gone.bad_frames = {}
                gone.bad_frames_refused = 0
            else:
                del devices[name]
    for name, reported in status.devices.items():
        device = devices.get(name)
        if device is None:
            devices[sys.intern(name)] = DeviceState(
                faults={}, kind=reported.kind, link=reported.link
            )
        else:
            device.kind = reported.kind
            device.link = reported.link


def branch_devices(branch: BranchState) -> int:
    return sum(len(agent.devices) for agent in branch.agents.values())


def _branch_faults(branch: BranchState) -> int:
    return sum(
        len(device.faults) for agent in branch.agents.values() for device in agent.devices.values()
    )


def _fault(
    rules: FloorRules, branch: BranchState, agent: AgentState, device_id: str, fault: str
) -> FaultState | str:
    """The fault's state (created inactive), or the reason a new label is refused."""
    device = agent.devices.get(device_id)
    if device is None:
        if branch_devices(branch) >= rules.max_devices:
            return "too_many_devices"
        device = agent.devices[sys.intern(device_id)] = DeviceState(faults={})
    state = device.faults.get(fault)
    if state is None:
        if _branch_faults(branch) >= rules.max_faults:
            return "too_many_faults"
        state = device.faults[sys.intern(fault)] = FaultState(active=False, since=-1.0)
    return state


def on_fault(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: DeviceFault
) -> str | None:
    return _set_fault(rules, branch, agent, e, active=True)


def on_recovered(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: DeviceRecovered
) -> str | None:
    return _set_fault(rules, branch, agent, e, active=False)


def _set_fault(
    rules: FloorRules,
    branch: BranchState,
    agent: AgentState,
    e: DeviceFault | DeviceRecovered,
    *,
    active: bool,
) -> str | None:
    """The fault's state from ``e`` unless a later event already set it; a rejection reason."""
    state = _fault(rules, branch, agent, e.device, e.fault)
    if isinstance(state, str):
        return state
    if e.ts >= state.since:
        state.active = active
        state.since = e.ts
    return None
