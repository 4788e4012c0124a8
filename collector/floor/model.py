"""The event dispatch table: one handler per event class, never an if/elif chain.

A handler takes ``(rules, branch, agent, event)``, updates the branch (or the
agent's devices) and returns ``None`` when applied, or the reason the event was
refused (state unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from branchwatch.contract import events as ev
from collector.floor import agents, counters, hours, intercom, posts, tickets
from collector.floor.branch import AgentState, BranchState
from collector.floor.config import FloorRules

E = TypeVar("E", bound=ev.Event)
Handler = Callable[[FloorRules, BranchState, AgentState, Any], "str | None"]


def _entry(
    event_type: type[E], handler: Callable[[FloorRules, BranchState, AgentState, E], str | None]
) -> tuple[type[ev.Event], Handler]:
    """One table row; the type checker sees that the handler takes that event class."""
    return event_type, handler


HANDLERS: Final[dict[type[ev.Event], Handler]] = dict(
    (
        _entry(ev.BranchOpened, hours.on_opened),
        _entry(ev.BranchClosed, hours.on_closed),
        _entry(ev.TicketIssued, tickets.on_issued),
        _entry(ev.TicketCalled, tickets.on_called),
        _entry(ev.TicketTransferred, tickets.on_transferred),
        _entry(ev.TicketNoShow, tickets.on_no_show),
        _entry(ev.TicketWalkout, tickets.on_walkout),
        _entry(ev.ServiceStarted, tickets.on_started),
        _entry(ev.ServiceEnded, tickets.on_ended),
        _entry(ev.CounterOpened, counters.on_opened),
        _entry(ev.CounterPaused, counters.on_paused),
        _entry(ev.CounterClosed, counters.on_closed),
        _entry(ev.EvaluationRequested, counters.on_requested),
        _entry(ev.EvaluationSubmitted, counters.on_submitted),
        _entry(ev.EvaluationExpired, counters.on_expired),
        _entry(ev.PositionStaffed, posts.on_staffed),
        _entry(ev.PositionVacated, posts.on_vacated),
        _entry(ev.IntercomCall, intercom.on_call),
        _entry(ev.IntercomAck, intercom.on_ack),
        _entry(ev.DeviceFault, agents.on_fault),
        _entry(ev.DeviceRecovered, agents.on_recovered),
    )
)


def _unknown(rules: FloorRules, branch: BranchState, agent: AgentState, event: Any) -> str:
    return "unknown_type"


def handler_for(event_type: type[ev.Event]) -> Handler:
    """The handler of an event class (a refusing one for a class this model does not know)."""
    return HANDLERS.get(event_type, _unknown)
