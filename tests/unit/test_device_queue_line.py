"""queue-line codec: golden lines → events, refused lines, resync, printer faults, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.devices.frames import BadFrame
from agent.devices.queue_line import MAX_LINE, QueueLineCodec
from agent.devices.testing import Recorded, readable
from branchwatch.contract import Event, decode_events, encode

NOW = 1_764_053_400.0  # the agent's clock: the time of a line without its own


class Codec(QueueLineCodec):
    """The codec on a fixed clock, its events shown as ``Recorded`` (type, ts, fields)."""

    def __init__(self) -> None:
        super().__init__(lambda: NOW)

    def feed(self, buf: bytearray) -> list[Recorded | BadFrame]:  # type: ignore[override]
        return readable(super().feed(buf))


GOLDEN = [
    (b"OPEN", Recorded("branch.opened", NOW, {})),
    (b"CLOSE", Recorded("branch.closed", NOW, {})),
    (
        b"ISSUE A001 cash",
        Recorded("ticket.issued", NOW, {"ticket": "A001", "service": "cash", "vip": False}),
    ),
    (
        b"ISSUE V007 vip V",
        Recorded("ticket.issued", NOW, {"ticket": "V007", "service": "vip", "vip": True}),
    ),
    (b"CALL A001 c1", Recorded("ticket.called", NOW, {"ticket": "A001", "counter": "c1"})),
    (b"START A001 c1", Recorded("service.started", NOW, {"ticket": "A001", "counter": "c1"})),
    (
        b"START A001 c1 t.wang",
        Recorded("service.started", NOW, {"ticket": "A001", "counter": "c1", "teller": "t.wang"}),
    ),
    (b"END A001 c1", Recorded("service.ended", NOW, {"ticket": "A001", "counter": "c1"})),
    (
        b"XFER A001 non_cash",
        Recorded("ticket.transferred", NOW, {"ticket": "A001", "service": "non_cash"}),
    ),
    (b"NOSHOW A002", Recorded("ticket.no_show", NOW, {"ticket": "A002"})),
    (b"WALK B004", Recorded("ticket.walkout", NOW, {"ticket": "B004"})),
    (b"CTR OPEN c1", Recorded("counter.opened", NOW, {"counter": "c1"})),
    (
        b"CTR OPEN c1 high t7",
        Recorded("counter.opened", NOW, {"counter": "c1", "kind": "high", "teller": "t7"}),
    ),
    (b"CTR OPEN c2 - t8", Recorded("counter.opened", NOW, {"counter": "c2", "teller": "t8"})),
    (b"CTR OPEN c3 vip", Recorded("counter.opened", NOW, {"counter": "c3", "kind": "vip"})),
    (b"CTR PAUSE c1 lunch", Recorded("counter.paused", NOW, {"counter": "c1", "reason": "lunch"})),
    (
        b"CTR PAUSE c1  cash   count",
        Recorded("counter.paused", NOW, {"counter": "c1", "reason": "cash count"}),
    ),
    (b"CTR PAUSE c1", Recorded("counter.paused", NOW, {"counter": "c1"})),
    (b"CTR CLOSE c1", Recorded("counter.closed", NOW, {"counter": "c1"})),
    (
        b"@1764054000.5 CALL A001 c1",
        Recorded("ticket.called", 1764054000.5, {"ticket": "A001", "counter": "c1"}),
    ),
    (b"@1764054000 OPEN", Recorded("branch.opened", 1764054000.0, {})),
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=[g[0].decode() for g in GOLDEN])
@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_golden_lines(line: bytes, expected: Recorded, ending: bytes) -> None:
    assert Codec().feed(bytearray(line + ending)) == [expected]


BAD = [
    (b"HELLO A001", "unknown_verb"),
    (b"issue A001 cash", "unknown_verb"),  # verbs are upper case
    (b"ISSUE A001", "bad_args"),
    (b"ISSUE A001 Cash", "bad_args"),  # service is a lower-case token
    (b"ISSUE A001 cash X", "bad_args"),
    (b"ISSUE A00 1 cash", "bad_args"),
    (b"CALL A001", "bad_args"),
    (b"CALL -A001 c1", "bad_args"),
    (b"START A001 c1 t7 extra", "bad_args"),
    (b"OPEN now", "bad_args"),
    (b"CTR OPEN c1 medium", "bad_args"),
    (b"CTR OPEN", "bad_args"),
    (b"CTR SHUT c1", "bad_args"),
    (b"CTR CLOSE c1 now", "bad_args"),
    (b"PRN", "bad_args"),
    (b"PRN SMOKE", "bad_args"),
    (b"@yesterday OPEN", "bad_timestamp"),
    (b"@1764054000123 OPEN", "bad_timestamp"),  # milliseconds, not seconds
    (b"@nan OPEN", "bad_timestamp"),
    (b"ISSUE A\xc3\xa9 cash", "not_ascii"),
    (b"ISSUE A001\x00 cash", "control_chars"),
    (b"CALL " + b"A" * 33 + b" c1", "bad_args"),  # ids are at most 32 characters
]


@pytest.mark.parametrize(("line", "reason"), BAD, ids=[b[0].decode("latin-1") for b in BAD])
def test_refused_lines_are_counted_not_raised(line: bytes, reason: str) -> None:
    (result,) = Codec().feed(bytearray(line + b"\r\n"))
    assert isinstance(result, BadFrame)
    assert result.reason == reason


def test_blank_lines_are_keepalives() -> None:
    assert Codec().feed(bytearray(b"\r\n\n  \r\n")) == []


def test_partial_line_waits_for_the_rest() -> None:
    codec, buf = Codec(), bytearray(b"CALL A0")
    assert codec.feed(buf) == []
    assert buf == b"CALL A0"
    buf += b"01 c1\r\nWALK"
    assert codec.feed(buf) == [Recorded("ticket.called", NOW, {"ticket": "A001", "counter": "c1"})]
    assert buf == b"WALK"


def test_runaway_line_is_one_bad_frame_then_resync_at_the_newline() -> None:
    codec = Codec()
    buf = bytearray(b"X" * (MAX_LINE + 10))
    assert [r.reason for r in codec.feed(buf) if isinstance(r, BadFrame)] == ["line_too_long"]
    buf += b"Y" * 5000  # still the same runaway line: dropped without another count
    assert codec.feed(buf) == []
    buf += b"ZZZ\r\nNOSHOW A9\r\n"
    assert codec.feed(buf) == [Recorded("ticket.no_show", NOW, {"ticket": "A9"})]


def test_good_line_right_after_a_runaway_one_in_the_same_chunk() -> None:
    buf = bytearray(b"X" * (MAX_LINE * 3) + b"\r\nOPEN\r\nCLO")
    assert Codec().feed(buf) == [
        BadFrame("line_too_long", f"{MAX_LINE * 3 + 1} bytes"),
        Recorded("branch.opened", NOW, {}),
    ]
    assert buf == b"CLO"


@given(st.integers(min_value=MAX_LINE + 1, max_value=3 * MAX_LINE), st.integers(1, 700))
def test_runaway_line_in_any_chunking_costs_one_bad_frame(length: int, chunk: int) -> None:
    stream = b"Y" * length + b"\nWALK A1\n"
    codec, buf, results = Codec(), bytearray(), []
    for start in range(0, len(stream), chunk):
        buf += stream[start : start + chunk]
        results += codec.feed(buf)
    assert [type(r).__name__ for r in results] == ["BadFrame", "Recorded"]


def test_line_of_exactly_max_length_is_read() -> None:
    reason = "r" * (MAX_LINE - len("CTR PAUSE c1 "))
    line = f"CTR PAUSE c1 {reason}".encode()
    assert len(line) == MAX_LINE
    (result,) = Codec().feed(bytearray(line + b"\r\n"))
    assert isinstance(result, Recorded)
    assert result.fields["reason"] == reason[:200]  # the contract bounds free text at 200


def test_garbage_between_lines_costs_one_bad_frame() -> None:
    buf = bytearray(b"OPEN\r\n\x01\x02\xffjunk\r\nWALK A1\r\n")
    results = Codec().feed(buf)
    assert [type(r).__name__ for r in results] == ["Recorded", "BadFrame", "Recorded"]


def test_printer_faults_and_recovery() -> None:
    codec = Codec()
    out = codec.feed(bytearray(b"PRN PAPER_LOW\nPRN PAPER_LOW\nPRN PAPER_OUT\nPRN OK\nPRN OK\n"))
    assert out == [
        Recorded("device.fault", NOW, {"fault": "paper_low"}),
        Recorded("device.fault", NOW, {"fault": "paper_out"}),
        Recorded("device.recovered", NOW, {"fault": "paper_low"}),
        Recorded("device.recovered", NOW, {"fault": "paper_out"}),
    ]
    assert codec.feed(bytearray(b"@1764054000 PRN JAM\n")) == [
        Recorded("device.fault", 1764054000.0, {"fault": "paper_jam"})
    ]


def test_first_ok_after_a_restart_clears_every_printer_fault() -> None:
    # The agent may have restarted while a fault was active: it cannot know which.
    assert Codec().feed(bytearray(b"PRN OK\n")) == [
        Recorded("device.recovered", NOW, {"fault": f})
        for f in ("paper_jam", "paper_low", "paper_out")
    ]


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    codec, buf = QueueLineCodec(lambda: NOW), bytearray()
    for chunk in chunks:
        buf += chunk
        for result in codec.feed(buf):
            assert isinstance(result, Event | BadFrame)
        assert b"\n" not in buf  # every complete line was consumed
        assert len(buf) <= MAX_LINE + 1


@given(
    st.lists(
        st.one_of(
            st.sampled_from([g[0] for g in GOLDEN] + [b[0] for b in BAD]),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
                str.encode
            ),
        ),
        max_size=20,
    )
)
def test_every_event_the_codec_yields_is_one_the_collector_accepts(lines: list[bytes]) -> None:
    # The codec's one schema check is the collector's: nothing it passes is refused later.
    stream = b"".join(b"ISSUE " + line + b"\n" for line in lines)
    stream += b"".join(line + b"\n" for line in lines)
    for result in QueueLineCodec(lambda: NOW).feed(bytearray(stream)):
        if not isinstance(result, BadFrame):
            assert decode_events(encode(result)) == [result]


@given(st.lists(st.sampled_from([g[0] for g in GOLDEN] + [b[0] for b in BAD]), max_size=30))
def test_any_mix_of_lines_yields_one_result_each(lines: list[bytes]) -> None:
    # PRN lines aside (none here), every non-blank line gives exactly one result.
    results = Codec().feed(bytearray(b"".join(line + b"\r\n" for line in lines)))
    assert len(results) == len(lines)
