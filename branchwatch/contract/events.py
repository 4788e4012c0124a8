"""Every v1 event type as a typed, immutable struct (docs/contract.md).

The ``type`` field is msgspec's tag, so one decoder picks the right struct
and validates its fields in one pass. Unknown extra fields are ignored, so an
agent can be upgraded with an additive field before the collectors are.
"""

from __future__ import annotations

from typing import Final

import msgspec

from branchwatch.contract.ids import (
    CounterKind,
    IntercomReason,
    LocalId,
    Position,
    Rating,
    Seq,
    ShortText,
    Timestamp,
    Token,
    Version,
)


class Event(msgspec.Struct, tag_field="type", frozen=True, gc=False):
    """Fields every event carries. Identity (region/branch/agent) is in the topic."""

    v: Version
    seq: Seq
    ts: Timestamp
    device: LocalId


class BranchOpened(Event, tag="branch.opened", frozen=True):
    pass


class BranchClosed(Event, tag="branch.closed", frozen=True):
    pass


class TicketIssued(Event, tag="ticket.issued", frozen=True):
    ticket: LocalId
    service: Token
    vip: bool = False


class TicketCalled(Event, tag="ticket.called", frozen=True):
    ticket: LocalId
    counter: LocalId


class TicketTransferred(Event, tag="ticket.transferred", frozen=True):
    ticket: LocalId
    service: Token


class TicketNoShow(Event, tag="ticket.no_show", frozen=True):
    ticket: LocalId


class TicketWalkout(Event, tag="ticket.walkout", frozen=True):
    ticket: LocalId


class ServiceStarted(Event, tag="service.started", frozen=True):
    ticket: LocalId
    counter: LocalId
    teller: LocalId | None = None


class ServiceEnded(Event, tag="service.ended", frozen=True):
    ticket: LocalId
    counter: LocalId


class CounterOpened(Event, tag="counter.opened", frozen=True):
    counter: LocalId
    kind: CounterKind | None = None
    teller: LocalId | None = None


class CounterPaused(Event, tag="counter.paused", frozen=True):
    counter: LocalId
    reason: ShortText | None = None


class CounterClosed(Event, tag="counter.closed", frozen=True):
    counter: LocalId


class EvaluationRequested(Event, tag="evaluation.requested", frozen=True):
    counter: LocalId
    ticket: LocalId | None = None
    teller: LocalId | None = None


class EvaluationSubmitted(Event, tag="evaluation.submitted", frozen=True):
    counter: LocalId
    rating: Rating
    ticket: LocalId | None = None
    teller: LocalId | None = None


class EvaluationExpired(Event, tag="evaluation.expired", frozen=True):
    counter: LocalId
    ticket: LocalId | None = None


class PositionStaffed(Event, tag="position.staffed", frozen=True):
    position: Position
    staff: LocalId | None = None


class PositionVacated(Event, tag="position.vacated", frozen=True):
    position: Position
    staff: LocalId | None = None


class IntercomCall(Event, tag="intercom.call", frozen=True):
    from_position: Position
    reason: IntercomReason
    to_position: Position | None = None


class IntercomAck(Event, tag="intercom.ack", frozen=True):
    position: Position
    notice: LocalId | None = None


class DeviceFault(Event, tag="device.fault", frozen=True):
    fault: Token


class DeviceRecovered(Event, tag="device.recovered", frozen=True):
    fault: Token


AnyEvent = (
    BranchOpened
    | BranchClosed
    | TicketIssued
    | TicketCalled
    | TicketTransferred
    | TicketNoShow
    | TicketWalkout
    | ServiceStarted
    | ServiceEnded
    | CounterOpened
    | CounterPaused
    | CounterClosed
    | EvaluationRequested
    | EvaluationSubmitted
    | EvaluationExpired
    | PositionStaffed
    | PositionVacated
    | IntercomCall
    | IntercomAck
    | DeviceFault
    | DeviceRecovered
)

EVENT_TYPES: Final[dict[str, type[Event]]] = {
    cls.__struct_config__.tag: cls for cls in AnyEvent.__args__
}
