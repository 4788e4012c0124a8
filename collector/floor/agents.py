"""Edge agents and their devices: status, session rule, seq gaps, device faults."""

from __future__ import annotations

from typing import Final

from branchwatch.contract.events import DeviceFault, DeviceRecovered
from branchwatch.contract.messages import Status
from collector.floor.branch import AgentState, BranchState, DeviceState, FaultState
from collector.floor.config import FloorRules

MAX_MISSING_PER_AGENT: Final = 10_000  # seqs remembered as missing; the oldest are forgotten


def record_gap(agent: AgentState, last: int, seq: int) -> int:
    """Remember the seqs skipped between ``last`` and ``seq``; return how many were skipped."""
    missing = agent.missing
    for skipped in range(max(last + 1, seq - MAX_MISSING_PER_AGENT), seq):
        missing[skipped] = None
    excess = len(missing) - MAX_MISSING_PER_AGENT
    if excess > 0:
        for oldest in list(missing)[:excess]:
            del missing[oldest]
    return seq - last - 1


def apply_status(
    rules: FloorRules, agent: AgentState, status: Status, received: float, other_devices: int
) -> bool:
    """Apply an agent's status; False when it is ignored or refused.

    Ignored: a session older than the known one (a late will of a previous
    connection), or, within one session, a status older than the last one.
    Refused: more devices in the branch (``other_devices`` are the branch's other
    agents') than ``max_devices``.
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
    online = status.state == "online"
    if online:
        keep = {name for name, device in agent.devices.items() if device.faults}
        if len(keep | status.devices.keys()) + other_devices > rules.max_devices:
            return False
    agent.session = status.session
    agent.up = online
    if status.ts is not None:
        agent.status_ts = status.ts
    agent.last_seen = max(agent.last_seen, received if status.ts is None else status.ts)
    if status.version is not None:
        agent.version = status.version
    if status.spool is not None:
        agent.spool_depth = status.spool.depth
        agent.spool_oldest_ts = status.spool.oldest_ts
        agent.spool_dropped = status.spool.dropped
    if online:
        _replace_devices(agent, status)
    return True


def _replace_devices(agent: AgentState, status: Status) -> None:
    """An online status lists every device; one it no longer lists keeps only its faults."""
    devices = agent.devices
    for name in list(devices):
        if name not in status.devices:
            gone = devices[name]
            if gone.faults:
                gone.kind = gone.link = None
            else:
                del devices[name]
    for name, reported in status.devices.items():
        device = devices.get(name)
        if device is None:
            devices[name] = DeviceState(faults={}, kind=reported.kind, link=reported.link)
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
        device = agent.devices[device_id] = DeviceState(faults={})
    state = device.faults.get(fault)
    if state is None:
        if _branch_faults(branch) >= rules.max_faults:
            return "too_many_faults"
        state = device.faults[fault] = FaultState(active=False, since=-1.0)
    return state


def on_fault(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: DeviceFault
) -> str | None:
    state = _fault(rules, branch, agent, e.device, e.fault)
    if isinstance(state, str):
        return state
    if e.ts >= state.since:
        state.active = True
        state.since = e.ts
    return None


def on_recovered(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: DeviceRecovered
) -> str | None:
    state = _fault(rules, branch, agent, e.device, e.fault)
    if isinstance(state, str):
        return state
    if e.ts >= state.since:
        state.active = False
        state.since = e.ts
    return None
