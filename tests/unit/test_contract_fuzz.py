"""Property tests: hostile input never escapes the codec as anything but a ContractError.

Three kinds of input: arbitrary bytes, arbitrary JSON values, and near misses built from
valid events, statuses and commands with one field mutated, dropped or retyped (the inputs
that reach the deepest validation paths). Whatever the decoder does with them, it either
returns typed messages or raises ``ContractError`` with a reason from ``REJECT_REASONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchwatch.contract import (
    EVENT_TYPES,
    REJECT_REASONS,
    Command,
    Event,
    Status,
    decode_command,
    decode_events,
    decode_status,
    encode,
)
from branchwatch.contract.ids import MAX_BATCH_EVENTS
from branchwatch.errors import ContractError

# Cheap inputs get 300 examples; structured ones hypothesis' default 100 (the suite stays quick).
FUZZ: Final = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FUZZ_STRUCTURED: Final = settings(FUZZ, max_examples=100)
Decoder = Callable[[bytes], object]
DECODERS: Final[tuple[Decoder, ...]] = (decode_events, decode_status, decode_command)

# ---------------------------------------------------------------- valid values per field name

_LOWER: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM: Final = _LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Built from alphabets rather than st.from_regex: same sets, far cheaper to draw.
local_ids: Final = st.builds(
    str.__add__, st.sampled_from(_ALNUM), st.text(_ALNUM + "_.-", max_size=31)
)
tokens: Final = st.text(_LOWER + "_", min_size=1, max_size=24)
positions: Final = st.integers(1, 99)
timestamps: Final = st.floats(0.0, 4_102_444_800.0, allow_nan=False) | st.integers(0, 4_102_444_800)
seqs: Final = st.integers(0, 2**63 - 1)

FIELD_VALUES: Final[dict[str, st.SearchStrategy[Any]]] = {
    "v": st.just(1),
    "seq": seqs,
    "ts": timestamps,
    "device": local_ids,
    "ticket": local_ids,
    "counter": local_ids,
    "teller": local_ids,
    "staff": local_ids,
    "notice": local_ids,
    "service": tokens,
    "fault": tokens,
    "vip": st.booleans(),
    "kind": st.sampled_from(["high", "low", "vip"]),
    "rating": st.sampled_from(["very_satisfied", "satisfied", "neutral", "unsatisfied"]),
    "position": positions,
    "from_position": positions,
    "to_position": positions,
}
# ``reason`` means a free text on counter.paused and an enum on intercom.call.
REASONS: Final[dict[str, st.SearchStrategy[Any]]] = {
    "counter.paused": st.text(max_size=200),
    "intercom.call": st.sampled_from(["handoff", "vip", "assist", "backup"]),
}


def field_strategy(type_: str, name: str) -> st.SearchStrategy[Any]:
    return REASONS[type_] if name == "reason" else FIELD_VALUES[name]


@st.composite
def valid_event_dicts(draw: st.DrawFn, type_: str | None = None) -> dict[str, Any]:
    """A valid event as a dict; optional fields are present or absent at random."""
    chosen = type_ if type_ is not None else draw(st.sampled_from(sorted(EVENT_TYPES)))
    body: dict[str, Any] = {"type": chosen}
    for field in msgspec.structs.fields(EVENT_TYPES[chosen]):
        if field.required or draw(st.booleans()):
            body[field.name] = draw(field_strategy(chosen, field.name))
    return body


@st.composite
def valid_statuses(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "state": draw(st.sampled_from(["online", "offline"])),
        "session": draw(seqs),
    }
    if draw(st.booleans()):  # a full status rather than a will
        body["ts"] = draw(timestamps)
        body["version"] = draw(st.text(max_size=200))
        body["devices"] = draw(
            st.dictionaries(
                local_ids,
                st.fixed_dictionaries({"kind": tokens, "link": st.sampled_from(["up", "down"])}),
                max_size=4,
            )
        )
        body["spool"] = {"depth": draw(seqs), "oldest_ts": draw(st.none() | timestamps)}
    return body


valid_commands: Final = st.fixed_dictionaries(
    {"v": st.just(1), "type": st.just("replay"), "from_seq": seqs}
) | st.fixed_dictionaries(
    {
        "v": st.just(1),
        "type": st.just("notify"),
        "id": local_ids,
        "position": positions,
        "text": st.text(max_size=200),
    }
)

# ---------------------------------------------------------------- arbitrary JSON values

CONTRACT_WORDS: Final = sorted(
    {"v", "type", "seq", "ts", "state", "session", "devices", "spool", "link", "from_seq"}
    | set(FIELD_VALUES)
    | set(EVENT_TYPES)
    | {"replay", "notify", "online", "offline", "up", "down", "id", "text", "reason"}
)
scalars: Final = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(CONTRACT_WORDS)
)
json_values: Final = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(CONTRACT_WORDS) | st.text(max_size=8), children, max_size=6
        )
    ),
    max_leaves=12,
)


def to_json(value: Any) -> bytes:
    """JSON bytes; msgspec refuses integers beyond 64 bits, so spell those out by hand."""
    try:
        return msgspec.json.encode(value)
    except OverflowError:
        return repr(value).encode()  # only ints overflow; their repr is valid JSON


# ---------------------------------------------------------------- near misses


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid message with one to three fields dropped, retyped, replaced or added."""
    body = dict(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "retype", "replace", "add", "version", "type"]))
        name = draw(st.sampled_from(sorted(body))) if body else "v"
        if action == "drop":
            body.pop(name, None)
        elif action == "retype":
            old_type = type(body.get(name))
            body[name] = draw(scalars.filter(lambda x: type(x) is not old_type))  # noqa: B023
        elif action == "replace":
            body[name] = draw(json_values)
        elif action == "add":
            body[draw(st.sampled_from(CONTRACT_WORDS) | st.text(max_size=8))] = draw(json_values)
        elif action == "version":
            body["v"] = draw(st.integers(-3, 5) | st.sampled_from([None, "1", 1.0, True]))
        else:
            body["type"] = draw(st.sampled_from(CONTRACT_WORDS) | st.text(max_size=12))
    return body


def check(decode: Decoder, payload: bytes) -> object | None:
    """Decode; only ContractError with a known reason may come out."""
    try:
        return decode(payload)
    except ContractError as exc:
        assert exc.reason in REJECT_REASONS, exc
        assert isinstance(exc.detail, str)
        assert exc.detail
        return None


# ---------------------------------------------------------------- properties


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(payload: bytes) -> None:
    for decode in DECODERS:
        check(decode, payload)


@FUZZ
@given(json_values)
def test_arbitrary_json_values(value: Any) -> None:
    payload = to_json(value)
    for decode in DECODERS:
        check(decode, payload)
    check(decode_events, to_json([value]))
    check(decode_events, to_json([value, value]))


@FUZZ_STRUCTURED
@given(st.one_of(mutated(valid_event_dicts()), st.lists(mutated(valid_event_dicts()), max_size=4)))
def test_near_miss_events(value: Any) -> None:
    payload = to_json(value)
    decoded = check(decode_events, payload)
    if decoded is not None:
        assert isinstance(decoded, list)
        assert decoded
        assert all(isinstance(event, Event) for event in decoded)
    check(decode_status, payload)
    check(decode_command, payload)


@FUZZ_STRUCTURED
@given(mutated(valid_statuses()))
def test_near_miss_statuses(value: dict[str, Any]) -> None:
    decoded = check(decode_status, to_json(value))
    assert decoded is None or isinstance(decoded, Status)


@FUZZ_STRUCTURED
@given(mutated(valid_commands))
def test_near_miss_commands(value: dict[str, Any]) -> None:
    decoded = check(decode_command, to_json(value))
    assert decoded is None or isinstance(decoded, Command)


@FUZZ_STRUCTURED
@given(st.binary(max_size=64), st.integers(1, 200))
def test_deeply_nested_input(tail: bytes, depth: int) -> None:
    for opener in (b"[", b'{"a":', b'{"v":1,"type":"branch.opened","x":['):
        payload = opener * (depth * 20) + tail
        for decode in DECODERS:
            check(decode, payload)


# ---------------------------------------------------------------- valid input is accepted


@FUZZ_STRUCTURED
@given(valid_event_dicts())
def test_valid_events_decode_and_round_trip(body: dict[str, Any]) -> None:
    (event,) = decode_events(to_json(body))
    assert type(event) is EVENT_TYPES[body["type"]]
    for name, value in body.items():
        if name != "type":
            assert getattr(event, name) == value
    assert decode_events(encode(event)) == [event]


@FUZZ_STRUCTURED
@given(st.lists(valid_event_dicts(), min_size=1, max_size=MAX_BATCH_EVENTS // 50), st.data())
def test_valid_batches_keep_their_order(bodies: list[dict[str, Any]], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, 2**40))
    gaps = data.draw(st.lists(st.integers(1, 1000), min_size=len(bodies), max_size=len(bodies)))
    seq = start
    for body, gap in zip(bodies, gaps, strict=True):
        body["seq"] = seq
        seq += gap
    events = decode_events(to_json(bodies))
    assert [e.seq for e in events] == [b["seq"] for b in bodies]
    assert decode_events(encode(events)) == events


@FUZZ_STRUCTURED
@given(valid_event_dicts(), st.data())
def test_dropping_a_required_field_is_missing_field(
    body: dict[str, Any], data: st.DataObject
) -> None:
    required = [f.name for f in msgspec.structs.fields(EVENT_TYPES[body["type"]]) if f.required]
    dropped = data.draw(st.sampled_from([*required, "type"]))
    del body[dropped]
    try:
        decode_events(to_json(body))
    except ContractError as exc:
        assert exc.reason == "missing_field", exc
    else:
        raise AssertionError(f"accepted without {dropped}: {body}")


@FUZZ_STRUCTURED
@given(mutated(valid_event_dicts()), st.integers().filter(lambda v: v != 1))
def test_any_other_integer_version_is_unsupported(body: dict[str, Any], version: int) -> None:
    body["v"] = version
    try:
        decode_events(to_json(body))
    except ContractError as exc:
        assert exc.reason == "unsupported_version"
    else:
        raise AssertionError("a v != 1 event was accepted")
