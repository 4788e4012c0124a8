"""Strict JSON codec of wire contract v1.

Decoding is one msgspec pass on the hot path. Only when that fails does
:func:`_classify` look at the payload again to name a machine-readable
reason, so hostile input costs more than good input, never the reverse.

Reasons: ``too_large``, ``bad_json``, ``bad_shape``, ``empty_batch``,
``too_many_events``, ``seq_order``, ``unsupported_version``,
``unknown_type``, ``missing_field``, ``bad_identifier``, ``bad_value``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from branchwatch.contract.events import AnyEvent, Event
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.contract.messages import AnyCommand, Command, Status
from branchwatch.errors import ContractError

REJECT_REASONS: Final = (
    "too_large",
    "bad_json",
    "bad_shape",
    "empty_batch",
    "too_many_events",
    "seq_order",
    "unsupported_version",
    "unknown_type",
    "missing_field",
    "bad_identifier",
    "bad_value",
)

_events_decoder: Final = msgspec.json.Decoder(AnyEvent | list[AnyEvent])
_status_decoder: Final = msgspec.json.Decoder(Status)
_command_decoder: Final = msgspec.json.Decoder(AnyCommand)
_any_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()

# What an MQTT client hands over: paho gives bytes, sometimes a bytearray.
Payload = bytes | bytearray | memoryview


def decode_events(payload: Payload) -> list[Event]:
    """One event object or an array of 1–500 events in strictly increasing ``seq``."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ContractError("too_large", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        decoded: Event | list[Event] = _events_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise _classify(payload, exc, "event") from exc
    if isinstance(decoded, Event):
        return [decoded]
    if not decoded:
        raise ContractError("empty_batch", "an event array must hold at least one event")
    if len(decoded) > MAX_BATCH_EVENTS:
        raise ContractError("too_many_events", f"{len(decoded)} events > {MAX_BATCH_EVENTS}")
    previous = -1
    for event in decoded:
        if event.seq <= previous:
            raise ContractError("seq_order", f"seq {event.seq} follows {previous} in one array")
        previous = event.seq
    return decoded


def decode_status(payload: Payload) -> Status:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ContractError("too_large", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        return _status_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise _classify(payload, exc, "status") from exc


def decode_command(payload: Payload) -> Command:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ContractError("too_large", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        command: Command = _command_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
        raise _classify(payload, exc, "command") from exc
    return command


def convert_event(raw: object) -> Event:
    """One event from JSON already parsed (a dict), checked and refused as by decode_events."""
    try:
        event: Event = msgspec.convert(raw, AnyEvent)
    except msgspec.ValidationError as exc:
        raise _refusal(raw, str(exc), "event") from exc
    return event


def encode(message: Event | Sequence[Event] | Status | Command) -> bytes:
    """JSON bytes of one event, an event batch, a status or a command."""
    return _encoder.encode(message)


def _classify(payload: Payload, exc: Exception, what: str) -> ContractError:
    if not isinstance(exc, msgspec.ValidationError):  # ValidationError is a DecodeError too
        return _bad_json(exc, what)
    try:
        raw: Any = _any_decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError) as untyped_exc:
        # The typed pass stops at the first invalid value; the rest may not even be JSON.
        return _bad_json(untyped_exc, what)
    return _refusal(raw, str(exc), what)


def _refusal(raw: Any, message: str, what: str) -> ContractError:
    """The reason for a schema ``message`` about ``raw`` (the payload as untyped JSON)."""
    items = raw if what == "event" and isinstance(raw, list) else [raw]
    if not all(isinstance(item, dict) for item in items):
        shape = "a JSON object or an array of objects" if what == "event" else "a JSON object"
        return ContractError("bad_shape", f"{what} must be {shape}: {message}")
    # A newer version may have other types and fields: say so, not "unknown type".
    for item in items:
        if "v" in item and item["v"] != 1:
            return ContractError("unsupported_version", f"v={item['v']!r} (this speaks v1)")
    # Match msgspec's message by its start or its path (always last): the middle may
    # echo a value from the payload, which must not be able to pick the reason.
    if message.startswith("Object missing required field"):
        return ContractError("missing_field", message)
    if message.endswith(".type`"):
        return ContractError("unknown_type", message)
    if message.startswith("Expected `str` matching regex"):
        return ContractError("bad_identifier", message)
    return ContractError("bad_value", message)


def _bad_json(exc: Exception, what: str) -> ContractError:
    if isinstance(exc, RecursionError):  # msgspec bounds nesting by the recursion limit
        return ContractError("bad_json", f"{what} JSON is nested too deeply: {exc}")
    return ContractError("bad_json", f"{what} is not valid JSON: {exc}")
