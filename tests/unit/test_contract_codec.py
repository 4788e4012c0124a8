"""Table-driven tests of the v1 codec: what decodes, and why the rest is rejected."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pytest

from branchwatch.contract import (
    EVENT_TYPES,
    REJECT_REASONS,
    Event,
    decode_events,
    encode,
)
from branchwatch.contract.events import (
    BranchOpened,
    CounterOpened,
    EvaluationSubmitted,
    IntercomCall,
    PositionVacated,
    TicketIssued,
)
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.errors import ContractError

TS: Final = 1_764_000_000.25

# Every type-specific field with every optional one set, per event type.
FULL_FIELDS: Final[dict[str, dict[str, Any]]] = {
    "branch.opened": {},
    "branch.closed": {},
    "ticket.issued": {"ticket": "A017", "service": "cash", "vip": True},
    "ticket.called": {"ticket": "A017", "counter": "c3"},
    "ticket.transferred": {"ticket": "A017", "service": "non_cash"},
    "ticket.no_show": {"ticket": "A017"},
    "ticket.walkout": {"ticket": "A017"},
    "service.started": {"ticket": "A017", "counter": "c3", "teller": "t.wang"},
    "service.ended": {"ticket": "A017", "counter": "c3"},
    "counter.opened": {"counter": "c3", "kind": "high", "teller": "t.wang"},
    "counter.paused": {"counter": "c3", "reason": "cash count"},
    "counter.closed": {"counter": "c3"},
    "evaluation.requested": {"counter": "c3", "ticket": "A017", "teller": "t.wang"},
    "evaluation.submitted": {
        "counter": "c3",
        "rating": "satisfied",
        "ticket": "A017",
        "teller": "t.wang",
    },
    "evaluation.expired": {"counter": "c3", "ticket": "A017"},
    "position.staffed": {"position": 1, "staff": "s.li"},
    "position.vacated": {"position": 1, "staff": "s.li"},
    "intercom.call": {"from_position": 1, "to_position": 7, "reason": "vip"},
    "intercom.ack": {"position": 3, "notice": "n-42"},
    "device.fault": {"fault": "paper_low"},
    "device.recovered": {"fault": "paper_low"},
}


def required_fields(type_: str) -> dict[str, Any]:
    """Only the fields of ``FULL_FIELDS[type_]`` the struct requires."""
    required = {f.name for f in msgspec.structs.fields(EVENT_TYPES[type_]) if f.required}
    return {k: v for k, v in FULL_FIELDS[type_].items() if k in required}


def event_dict(type_: str = "ticket.issued", seq: Any = 1, **fields: Any) -> dict[str, Any]:
    """A valid event as a JSON-able dict; ``fields`` override or add fields."""
    body: dict[str, Any] = {"v": 1, "seq": seq, "ts": TS, "device": "queue-1", "type": type_}
    body.update(FULL_FIELDS[type_])
    body.update(fields)
    return body


def without(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in names}


def dumps(value: Any) -> bytes:
    return msgspec.json.encode(value)


def make_event(type_: str, fields: dict[str, Any], seq: int = 1) -> Event:
    """The struct built directly (no decoder involved) for comparison."""
    return EVENT_TYPES[type_](v=1, seq=seq, ts=TS, device="queue-1", **fields)


def reason_of(decode: Any, payload: bytes) -> str:
    with pytest.raises(ContractError) as info:
        decode(payload)
    assert info.value.reason in REJECT_REASONS
    assert info.value.detail, "a rejection must say why, for humans"
    return str(info.value.reason)


# --------------------------------------------------------------------------- round trips


def test_examples_cover_every_event_type() -> None:
    assert set(FULL_FIELDS) == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == 21


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
@pytest.mark.parametrize("variant", ["full", "required_only"])
def test_every_event_type_round_trips(type_: str, variant: str) -> None:
    fields = FULL_FIELDS[type_] if variant == "full" else required_fields(type_)
    event = make_event(type_, fields)
    wire = encode(event)
    assert msgspec.json.decode(wire)["type"] == type_
    assert decode_events(wire) == [event]
    # A hand-written payload decodes to the same struct as the encoder's output.
    common = without(event_dict(type_), *FULL_FIELDS[type_])
    (decoded,) = decode_events(dumps(common | fields))
    assert type(decoded) is EVENT_TYPES[type_]
    assert decoded == event


def test_optional_fields_take_their_defaults() -> None:
    (issued,) = decode_events(dumps(without(event_dict("ticket.issued"), "vip")))
    assert isinstance(issued, TicketIssued)
    assert issued.vip is False
    (opened,) = decode_events(dumps(without(event_dict("counter.opened"), "kind", "teller")))
    assert isinstance(opened, CounterOpened)
    assert (opened.kind, opened.teller) == (None, None)
    (call,) = decode_events(dumps(without(event_dict("intercom.call"), "to_position")))
    assert isinstance(call, IntercomCall)
    assert call.to_position is None  # None means: every post
    (vacated,) = decode_events(dumps(without(event_dict("position.vacated"), "staff")))
    assert isinstance(vacated, PositionVacated)
    assert vacated.staff is None  # None means: the post is now empty


def test_single_object_and_array_both_decode_to_a_list() -> None:
    body = event_dict("branch.opened")
    single = decode_events(dumps(body))
    array = decode_events(dumps([body]))
    assert single == array == [make_event("branch.opened", {})]


def test_a_batch_of_every_type_round_trips_in_order() -> None:
    batch = [make_event(t, FULL_FIELDS[t], seq=10 + i) for i, t in enumerate(sorted(EVENT_TYPES))]
    assert decode_events(encode(batch)) == batch
    assert decode_events(encode(tuple(batch))) == batch


def test_batch_limits_are_inclusive() -> None:
    batch = [event_dict("branch.opened", seq=i) for i in range(MAX_BATCH_EVENTS)]
    assert len(decode_events(dumps(batch))) == MAX_BATCH_EVENTS
    # seq need not be contiguous inside a batch, only strictly increasing.
    assert [e.seq for e in decode_events(dumps([event_dict(seq=3), event_dict(seq=9)]))] == [3, 9]


def test_message_of_exactly_64_kib_is_accepted() -> None:
    body = dumps(event_dict("branch.opened"))
    payload = body + b" " * (MAX_MESSAGE_BYTES - len(body))
    assert len(payload) == MAX_MESSAGE_BYTES
    assert decode_events(payload) == [make_event("branch.opened", {})]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("device", "A"),
        ("device", "Queue-1.b_2"),
        ("device", "x" * 32),
        ("ticket", "0" * 32),
        ("service", "s" * 24),
        ("service", "_"),
        ("seq", 0),
        ("seq", 2**63 - 1),
        ("ts", 0),
        ("ts", 1_764_000_000),
        ("ts", 4_102_444_800.0),
    ],
)
def test_boundary_values_are_accepted(name: str, value: Any) -> None:
    (event,) = decode_events(dumps(event_dict("ticket.issued", **{name: value})))
    assert getattr(event, name) == value


@pytest.mark.parametrize("position", [1, 99])
def test_position_bounds_are_inclusive(position: int) -> None:
    (event,) = decode_events(dumps(event_dict("position.staffed", position=position)))
    assert isinstance(event, Event)
    assert getattr(event, "position") == position  # noqa: B009 - Event has no position


@pytest.mark.parametrize("rating", ["very_satisfied", "satisfied", "neutral", "unsatisfied"])
def test_every_rating_is_accepted(rating: str) -> None:
    (event,) = decode_events(dumps(event_dict("evaluation.submitted", rating=rating)))
    assert isinstance(event, EvaluationSubmitted)
    assert event.rating == rating


def test_unknown_extra_fields_are_ignored() -> None:
    """Forward compatibility: an agent may add a field before the collectors know it."""
    plain = decode_events(dumps(event_dict("ticket.issued")))
    extra = event_dict("ticket.issued", queue_len=4, meta={"a": [1, None]}, note="x" * 500)
    assert decode_events(dumps(extra)) == plain
    assert decode_events(dumps([extra])) == plain


# --------------------------------------------------------------------------- rejections

OK_EVENT: Final = event_dict("ticket.issued")
LONG_BATCH: Final = [event_dict("branch.opened", seq=i) for i in range(MAX_BATCH_EVENTS + 1)]


def padded(body: dict[str, Any], size: int) -> bytes:
    raw = dumps(body)
    return raw + b" " * (size - len(raw))


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


EVENT_REJECTIONS: Final[list[tuple[str, bytes, str]]] = [
    # size
    ("too_large", padded(OK_EVENT, MAX_MESSAGE_BYTES + 1), "just_over_64k"),
    ("too_large", b"[" + b" " * (10 * MAX_MESSAGE_BYTES), "huge_garbage_not_parsed"),
    # JSON syntax
    ("bad_json", b"", "empty_payload"),
    ("bad_json", b"   ", "whitespace_only"),
    ("bad_json", b"{", "truncated_object"),
    ("bad_json", b"\xff\xfe", "not_utf8"),
    ("bad_json", b'{"v":1,}', "trailing_comma"),
    ("bad_json", b"{'v': 1}", "single_quotes"),
    ("bad_json", b"NaN", "nan_literal"),
    ("bad_json", dumps(OK_EVENT) + b"x", "trailing_garbage"),
    ("bad_json", dumps(OK_EVENT) + dumps(OK_EVENT), "two_objects"),
    ("bad_json", b'[{"v":1}, garbage', "garbage_after_first_bad_element"),
    ("bad_json", _nested(5000), "nested_too_deeply"),
    (
        "bad_json",
        dumps(OK_EVENT)[:-1] + b',"extra":' + _nested(5000) + b"}",
        "deep_unknown_field",
    ),
    ("bad_json", dumps(OK_EVENT).replace(b"1764000000.25", b"1e400"), "ts_overflows_double"),
    # shape
    ("bad_shape", b"null", "null"),
    ("bad_shape", b"42", "number"),
    ("bad_shape", b'"ticket.issued"', "string"),
    ("bad_shape", b"true", "bool"),
    ("bad_shape", b"[1]", "array_of_number"),
    ("bad_shape", b"[[]]", "array_of_array"),
    ("bad_shape", dumps([OK_EVENT, 2]), "mixed_array"),
    ("bad_shape", dumps([[OK_EVENT]]), "nested_batch"),
    # batch
    ("empty_batch", b"[]", "empty_array"),
    ("empty_batch", b" [ ] ", "empty_array_spaces"),
    ("too_many_events", dumps(LONG_BATCH), "501_events"),
    ("seq_order", dumps([event_dict(seq=5), event_dict(seq=5)]), "equal_seq"),
    ("seq_order", dumps([event_dict(seq=5), event_dict(seq=4)]), "decreasing_seq"),
    (
        "seq_order",
        dumps([event_dict(seq=1), event_dict(seq=3), event_dict(seq=2), event_dict(seq=4)]),
        "out_of_order_in_middle",
    ),
    # version
    ("unsupported_version", dumps(event_dict(v=2)), "v2_known_type"),
    ("unsupported_version", dumps(event_dict(v=2, type="queue.exploded")), "v2_unknown_type"),
    ("unsupported_version", dumps({"v": 2, "type": "hello"}), "v2_unknown_everything"),
    ("unsupported_version", dumps(event_dict(v=0)), "v0"),
    ("unsupported_version", dumps([OK_EVENT, event_dict(seq=2, v=2)]), "v2_in_batch"),
    # type
    ("unknown_type", dumps(event_dict(type="ticket.eaten")), "unknown_type"),
    ("unknown_type", dumps(event_dict(type="")), "empty_type"),
    ("unknown_type", dumps(event_dict(type="Ticket.Issued")), "wrong_case_type"),
    ("unknown_type", dumps(event_dict(type=5)), "type_not_string"),
    ("unknown_type", dumps(event_dict(type=None)), "type_null"),
    ("unknown_type", dumps([OK_EVENT, event_dict(seq=2, type="nope")]), "unknown_type_in_batch"),
    # missing fields (one per type-specific field follows in its own table)
    ("missing_field", dumps(without(OK_EVENT, "type")), "no_type"),
    ("missing_field", dumps(without(OK_EVENT, "v")), "no_v"),
    ("missing_field", dumps(without(OK_EVENT, "seq")), "no_seq"),
    ("missing_field", dumps(without(OK_EVENT, "ts")), "no_ts"),
    ("missing_field", dumps(without(OK_EVENT, "device")), "no_device"),
    ("missing_field", b"{}", "empty_object"),
    ("missing_field", dumps([OK_EVENT, without(event_dict(seq=2), "ticket")]), "in_batch"),
    # identifiers: each kind
    ("bad_identifier", dumps(event_dict(device="")), "device_empty"),
    ("bad_identifier", dumps(event_dict(device="-queue")), "device_leading_dash"),
    ("bad_identifier", dumps(event_dict(device=".queue")), "device_leading_dot"),
    ("bad_identifier", dumps(event_dict(device="x" * 33)), "device_33_chars"),
    ("bad_identifier", dumps(event_dict(device="queue 1")), "device_space"),
    ("bad_identifier", dumps(event_dict(device="queue/1")), "device_slash"),
    ("bad_identifier", dumps(event_dict(device="caf\u00e9")), "device_non_ascii"),
    ("bad_identifier", dumps(event_dict(device="queue-1\n")), "device_trailing_newline"),
    ("bad_identifier", dumps(event_dict(ticket="A 17")), "ticket"),
    ("bad_identifier", dumps(event_dict(ticket="A17\n")), "ticket_trailing_newline"),
    ("bad_identifier", dumps(event_dict("ticket.called", counter="c#3")), "counter"),
    ("bad_identifier", dumps(event_dict("service.started", teller="t wang")), "teller"),
    ("bad_identifier", dumps(event_dict("counter.opened", teller="_t")), "teller_on_counter"),
    ("bad_identifier", dumps(event_dict("position.staffed", staff="s:li")), "staff"),
    ("bad_identifier", dumps(event_dict("intercom.ack", notice="n 42")), "notice"),
    ("bad_identifier", dumps(event_dict(service="Cash")), "service_upper_case"),
    ("bad_identifier", dumps(event_dict(service="non-cash")), "service_dash"),
    ("bad_identifier", dumps(event_dict(service="")), "service_empty"),
    ("bad_identifier", dumps(event_dict(service="s" * 25)), "service_25_chars"),
    ("bad_identifier", dumps(event_dict(service="cash\n")), "service_trailing_newline"),
    ("bad_identifier", dumps(event_dict("ticket.transferred", service="v.i.p")), "service_dots"),
    ("bad_identifier", dumps(event_dict("device.fault", fault="Paper low")), "fault"),
    # values
    ("unsupported_version", dumps(event_dict(v="1")), "v_string_is_another_version"),
    ("bad_value", dumps(event_dict(v=1.0)), "v_float"),
    ("bad_value", dumps(event_dict(v=True)), "v_bool"),
    ("bad_value", dumps(event_dict(seq=-1)), "seq_negative"),
    ("bad_value", dumps(event_dict(seq=1.5)), "seq_float"),
    ("bad_value", dumps(event_dict(seq="1")), "seq_string"),
    ("bad_value", dumps(event_dict(seq=2**63)), "seq_over_int64"),
    ("bad_value", dumps(event_dict(seq=None)), "seq_null"),
    ("bad_value", dumps(event_dict(ts=-0.001)), "ts_negative"),
    ("bad_value", dumps(event_dict(ts=4_102_444_800.5)), "ts_after_2100"),
    ("bad_value", dumps(event_dict(ts=1_764_000_000_000)), "ts_in_milliseconds"),
    ("bad_value", dumps(event_dict(ts="2025-11-24T12:00:00Z")), "ts_string"),
    ("bad_value", dumps(event_dict(ts=True)), "ts_bool"),
    ("bad_value", dumps(event_dict(device=7)), "device_number"),
    ("bad_value", dumps(event_dict(ticket=None)), "ticket_null"),
    ("bad_value", dumps(event_dict(vip="yes")), "vip_string"),
    ("bad_value", dumps(event_dict(vip=1)), "vip_int"),
    ("bad_value", dumps(event_dict("position.staffed", position=0)), "position_0"),
    ("bad_value", dumps(event_dict("position.staffed", position=100)), "position_100"),
    ("bad_value", dumps(event_dict("position.vacated", position=-1)), "position_negative"),
    ("bad_value", dumps(event_dict("position.staffed", position=1.0)), "position_float"),
    ("bad_value", dumps(event_dict("position.staffed", position="1")), "position_string"),
    ("bad_value", dumps(event_dict("intercom.call", from_position=0)), "from_position_0"),
    ("bad_value", dumps(event_dict("intercom.call", to_position=100)), "to_position_100"),
    ("bad_value", dumps(event_dict("intercom.call", reason="chat")), "intercom_reason"),
    ("bad_value", dumps(event_dict("intercom.ack", position=100)), "ack_position_100"),
    ("bad_value", dumps(event_dict("evaluation.submitted", rating="happy")), "rating_unknown"),
    (
        "bad_value",
        dumps(event_dict("evaluation.submitted", rating="Satisfied")),
        "rating_wrong_case",
    ),
    ("bad_value", dumps(event_dict("evaluation.submitted", rating=5)), "rating_number"),
    ("bad_value", dumps(event_dict("evaluation.submitted", rating=None)), "rating_null"),
    ("bad_value", dumps(event_dict("counter.opened", kind="medium")), "counter_kind"),
    ("bad_value", dumps(event_dict("counter.paused", reason="r" * 201)), "pause_reason_201"),
    ("bad_value", dumps([OK_EVENT, event_dict(seq=-2)]), "bad_value_in_batch"),
    # The reason is chosen by the error, never by text the payload echoes into it.
    (
        "bad_value",
        dumps(event_dict("evaluation.submitted", rating="missing required field")),
        "rating_text_mimics_missing_field",
    ),
    (
        "bad_value",
        dumps(event_dict("evaluation.submitted", rating="Expected `str` matching regex")),
        "rating_text_mimics_bad_identifier",
    ),
    ("unknown_type", dumps(event_dict(type="missing required field")), "type_mimics_missing"),
]


@pytest.mark.parametrize(
    ("reason", "payload"),
    [pytest.param(r, p, id=f"{r}-{i}") for r, p, i in EVENT_REJECTIONS],
)
def test_event_rejections(reason: str, payload: bytes) -> None:
    assert reason_of(decode_events, payload) == reason


REQUIRED_EVENT_FIELDS: Final = [
    (type_, f.name)
    for type_, cls in sorted(EVENT_TYPES.items())
    for f in msgspec.structs.fields(cls)
    if f.required
]


@pytest.mark.parametrize(("type_", "field"), REQUIRED_EVENT_FIELDS)
def test_each_required_field_of_each_type_is_missing_field(type_: str, field: str) -> None:
    payload = dumps(without(event_dict(type_), field))
    assert reason_of(decode_events, payload) == "missing_field"


def test_required_fields_table_is_complete() -> None:
    # Guards the generated table itself: it must know the type-specific fields too.
    assert ("ticket.issued", "service") in REQUIRED_EVENT_FIELDS
    assert ("intercom.call", "reason") in REQUIRED_EVENT_FIELDS
    assert ("ticket.issued", "vip") not in REQUIRED_EVENT_FIELDS
    assert len(REQUIRED_EVENT_FIELDS) == 21 * 4 + 26  # common four + the contract's field table


# --------------------------------------------------------------------------- coverage of reasons


def test_every_event_reason_is_exercised() -> None:
    assert {r for r, _, _ in EVENT_REJECTIONS} == set(REJECT_REASONS)


def test_reject_reasons_are_unique_label_values() -> None:
    assert len(set(REJECT_REASONS)) == len(REJECT_REASONS) == 11
    assert all(r.isidentifier() and r.islower() for r in REJECT_REASONS)


def test_rejection_chains_the_msgspec_error() -> None:
    with pytest.raises(ContractError) as info:
        decode_events(dumps(event_dict(seq=-1)))
    assert isinstance(info.value.__cause__, msgspec.ValidationError)
    assert "$.seq" in info.value.detail


def test_encode_of_one_event_is_an_object() -> None:
    raw = msgspec.json.decode(encode(BranchOpened(v=1, seq=1, ts=TS, device="queue-1")))
    assert raw == {"type": "branch.opened", "v": 1, "seq": 1, "ts": TS, "device": "queue-1"}
