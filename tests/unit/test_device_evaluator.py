"""evaluator-frame: CRC, golden frames, resync, the rating window state machine, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.devices import evaluator_frame as ef
from agent.devices.base import DeviceConfig
from agent.devices.evaluation_window import EvaluationWindows
from agent.devices.evaluator import EvaluatorCodec, EvaluatorDevice
from agent.devices.frames import BadFrame, Result
from agent.devices.testing import Recorded, RecordingContext, readable
from agent.errors import DeviceError
from branchwatch.contract import Event, decode_events, encode


def test_crc8_is_smbus() -> None:
    assert ef.crc8(b"123456789") == 0xF4


GOLDEN = [
    (ef.encode_request(1, "A017", "t.wang"), ef.PadFrame(1, "request", None, "A017", "t.wang")),
    (ef.encode_request(2, "A018"), ef.PadFrame(2, "request", None, "A018", None)),
    (ef.encode_request(3), ef.PadFrame(3, "request")),
    (ef.encode_rating(1, 1), ef.PadFrame(1, "rating", "very_satisfied")),
    (ef.encode_rating(1, 2), ef.PadFrame(1, "rating", "satisfied")),
    (ef.encode_rating(1, 3), ef.PadFrame(1, "rating", "neutral")),
    (ef.encode_rating(255, 4), ef.PadFrame(255, "rating", "unsatisfied")),
    (ef.encode_cancel(3), ef.PadFrame(3, "cancel")),
]


def test_golden_bytes_on_the_wire() -> None:
    # Pinned bytes: the documented examples of docs/devices/evaluator-frame.md.
    assert ef.encode_request(1, "A017", "t.wang").hex() == "020d0110413031371f742e77616e6734"
    assert ef.encode_rating(1, 1).hex() == "0202012124"
    assert ef.encode_cancel(3).hex() == "0202033079"


@pytest.mark.parametrize(("frame", "expected"), GOLDEN, ids=[g[0].hex() for g in GOLDEN])
def test_golden_frames(frame: bytes, expected: ef.PadFrame) -> None:
    assert ef.decode(frame) == (len(frame), expected)
    assert ef.decode(frame[:-1]) == (0, None)  # incomplete: wait


def _frame(length: int, payload: bytes) -> bytes:
    body = bytes((length,)) + payload
    return b"\x02" + body + bytes((ef.crc8(body),))


BAD = [
    (_frame(2, b"\x00\x21"), "bad_pad"),
    (_frame(2, b"\x01\x99"), "unknown_code"),
    (_frame(3, b"\x01\x21X"), "unknown_code"),  # a rating carries no data
    (_frame(5, b"\x01\x10\xff\xfe\xfd"), "bad_data"),
    (_frame(5, b"\x01\x10A B"), "bad_data"),
    (_frame(7, b"\x01\x10A\x1fB\x1fC"), "bad_data"),
]


@pytest.mark.parametrize(("frame", "reason"), BAD, ids=[b[1] + b[0].hex() for b in BAD])
def test_refused_frames_are_consumed_whole(frame: bytes, reason: str) -> None:
    consumed, result = ef.decode(frame)
    assert consumed == len(frame)
    assert isinstance(result, BadFrame)
    assert result.reason == reason


def test_resync_after_garbage_bad_length_and_bad_checksum() -> None:
    good = ef.encode_rating(1, 2)
    corrupt = bytearray(ef.encode_rating(1, 3))
    corrupt[-1] ^= 0xFF
    stream = bytearray(b"\xaa\xbb" + b"\x02\x00" + bytes(corrupt) + b"\x02\x41" + good)
    reasons, frames = [], []
    while stream:
        consumed, result = ef.decode(stream)
        assert consumed > 0
        del stream[:consumed]
        if isinstance(result, BadFrame):
            reasons.append(result.reason)
        elif result is not None:
            frames.append(result)
    assert frames == [ef.PadFrame(1, "rating", "satisfied")]
    # Only a STX is dropped on a bad length or checksum, then the scan goes on: the corrupt
    # frame's own length byte (0x02) looks like a STX, which is how a real line behaves.
    assert reasons == [
        "garbage", "bad_length", "garbage",  # AA BB | 02 00 | 00
        "bad_checksum", "bad_length", "garbage",  # 02 02 01 23 ~crc
        "bad_length", "garbage",  # 02 41 | 41
    ]  # fmt: skip


def test_encoders_refuse_what_a_pad_cannot_send() -> None:
    with pytest.raises(ValueError):
        ef.encode_rating(1, 5)
    with pytest.raises(ValueError):
        ef.encode(0, 0x21)
    with pytest.raises(ValueError):
        ef.encode(1, 0x10, b"x" * 63)
    with pytest.raises(ValueError):
        ef.encode_request(1, None, "t.wang")


@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_always_progress(data: bytes) -> None:
    buf = bytearray(data)
    while buf:
        consumed, result = ef.decode(buf)
        assert isinstance(result, ef.PadFrame | BadFrame | None)
        if consumed == 0:
            assert result is None
            assert buf[0] == ef.STX and len(buf) < 3 + ef.MAX_LEN
            break
        del buf[:consumed]


@given(st.lists(st.sampled_from([g[0] for g in GOLDEN]), max_size=20), st.binary(max_size=40))
def test_valid_frames_survive_leading_garbage(frames: list[bytes], garbage: bytes) -> None:
    codec = EvaluatorCodec(EvaluationWindows(), "c1", {}, clock=lambda: 1e9)
    buf = bytearray(garbage.replace(b"\x02", b"") + b"".join(frames))
    results = codec.feed(buf)
    assert not buf
    assert all(isinstance(r, Event | BadFrame) for r in results)


# -- the window --------------------------------------------------------------------------------

T0 = 1_764_054_000.0


def test_rating_within_the_window_is_accepted_once() -> None:
    w = EvaluationWindows(10.0)
    assert readable(w.request("c3", T0, "A017", "t.wang")) == [
        Recorded(
            "evaluation.requested", T0, {"counter": "c3", "ticket": "A017", "teller": "t.wang"}
        )
    ]
    assert w.next_deadline() == T0 + 10
    assert readable(w.rating("c3", "satisfied", T0 + 10)) == [  # the window's last instant counts
        Recorded(
            "evaluation.submitted",
            T0 + 10,
            {"counter": "c3", "ticket": "A017", "teller": "t.wang", "rating": "satisfied"},
        )
    ]
    assert w.next_deadline() is None
    assert w.rating("c3", "unsatisfied", T0 + 11) == [
        BadFrame("duplicate_rating", "counter c3: unsatisfied")
    ]
    assert w.expire(T0 + 100) == []


def test_window_expires_at_its_deadline() -> None:
    w = EvaluationWindows(10.0)
    w.request("c1", T0, "A1")
    assert w.expire(T0 + 9.9) == []
    assert readable(w.expire(T0 + 10.5)) == [
        Recorded("evaluation.expired", T0 + 10, {"counter": "c1", "ticket": "A1"})
    ]
    assert w.rating("c1", "neutral", T0 + 11) == [BadFrame("late_rating", "counter c1: neutral")]


def test_late_rating_first_expires_the_request() -> None:
    w = EvaluationWindows(5.0)
    w.request("c1", T0)
    assert readable(w.rating("c1", "neutral", T0 + 6)) == [
        Recorded("evaluation.expired", T0 + 5, {"counter": "c1"}),
        BadFrame("late_rating", "counter c1: neutral"),
    ]


def test_rating_without_a_request_and_cancel() -> None:
    w = EvaluationWindows()
    assert w.rating("c2", "satisfied", T0) == [
        BadFrame("rating_without_request", "counter c2: satisfied")
    ]
    assert w.cancel("c2", T0) == [BadFrame("cancel_without_request", "counter c2")]
    w.request("c2", T0, "B1")
    assert readable(w.cancel("c2", T0 + 2)) == [
        Recorded("evaluation.expired", T0 + 2, {"counter": "c2", "ticket": "B1"})
    ]


def test_new_request_replaces_an_unanswered_one() -> None:
    w = EvaluationWindows()
    w.request("c1", T0, "A1")
    assert readable(w.request("c1", T0 + 3, "A2")) == [
        Recorded("evaluation.expired", T0 + 3, {"counter": "c1", "ticket": "A1"}),
        Recorded("evaluation.requested", T0 + 3, {"counter": "c1", "ticket": "A2"}),
    ]
    (submitted,) = readable(w.rating("c1", "satisfied", T0 + 4))
    assert isinstance(submitted, Recorded) and submitted.fields["ticket"] == "A2"


def test_counters_have_independent_windows() -> None:
    w = EvaluationWindows(10.0)
    w.request("c1", T0)
    w.request("c2", T0 + 5)
    assert [e.counter for e in w.expire(T0 + 10.1)] == ["c1"]  # type: ignore[union-attr]
    assert w.next_deadline() == T0 + 15


def test_pads_map_to_counters() -> None:
    now = [T0]
    codec = EvaluatorCodec(EvaluationWindows(), None, {1: "c1", 2: "c2"}, clock=lambda: now[0])
    out = codec.feed(
        bytearray(ef.encode_request(2, "A1") + ef.encode_rating(2, 4) + ef.encode_rating(9, 1))
    )
    assert readable(out) == [
        Recorded("evaluation.requested", T0, {"counter": "c2", "ticket": "A1"}),
        Recorded(
            "evaluation.submitted", T0, {"counter": "c2", "ticket": "A1", "rating": "unsatisfied"}
        ),
        BadFrame("unknown_pad", "pad 9"),
    ]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"counter": "bad id"},
        {"pads": {"0": "c1"}},
        {"pads": {"1": 5}},
        {"pads": []},
        {"counter": "c1", "window": 0},
        {"counter": "c1", "window": "10"},
        {"counter": "c1", "colour": 1},
    ],
)
def test_bad_options_are_device_errors(options: dict[str, object]) -> None:
    config = DeviceConfig(id="pad-1", protocol="evaluator-frame", url="loop://", options=options)
    with pytest.raises(DeviceError):
        EvaluatorDevice(config, RecordingContext())


OPS = st.lists(
    st.tuples(
        st.sampled_from(["request", "rating", "cancel", "tick"]),
        st.sampled_from(["c1", "c2"]),
        st.floats(min_value=0.0, max_value=15.0),
    ),
    max_size=40,
)


@given(OPS)
def test_every_request_ends_exactly_once(ops: list[tuple[str, str, float]]) -> None:
    """requested = submitted + expired (+ still open), whatever the pads and the clock do."""
    w, now = EvaluationWindows(10.0), T0
    results: list[Result] = []
    for op, counter, step in ops:
        now += step
        if op == "request":
            results += w.request(counter, now)
        elif op == "rating":
            results += w.rating(counter, "neutral", now)
        elif op == "cancel":
            results += w.cancel(counter, now)
        else:
            results += w.expire(now)
    results += w.expire(now + 1000)
    events = [r for r in results if isinstance(r, Event)]
    types = [r.__struct_config__.tag for r in events]
    assert types.count("evaluation.requested") == (
        types.count("evaluation.submitted") + types.count("evaluation.expired")
    )
    assert all(T0 <= event.ts <= now + 1000 for event in events)
    # Built directly, not converted: the values were checked where they entered, and
    # every event is still one the collector accepts.
    assert all(decode_events(encode(event)) == [event] for event in events)
