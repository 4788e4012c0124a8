"""queue-line codec: golden lines → events, refused lines, resync, printer faults, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.devices.frames import BadFrame, Emit
from agent.devices.queue_line import MAX_LINE, QueueLineCodec

GOLDEN = [
    (b"OPEN", Emit("branch.opened", {})),
    (b"CLOSE", Emit("branch.closed", {})),
    (
        b"ISSUE A001 cash",
        Emit("ticket.issued", {"ticket": "A001", "service": "cash", "vip": False}),
    ),
    (b"ISSUE V007 vip V", Emit("ticket.issued", {"ticket": "V007", "service": "vip", "vip": True})),
    (b"CALL A001 c1", Emit("ticket.called", {"ticket": "A001", "counter": "c1"})),
    (b"START A001 c1", Emit("service.started", {"ticket": "A001", "counter": "c1"})),
    (
        b"START A001 c1 t.wang",
        Emit("service.started", {"ticket": "A001", "counter": "c1", "teller": "t.wang"}),
    ),
    (b"END A001 c1", Emit("service.ended", {"ticket": "A001", "counter": "c1"})),
    (b"XFER A001 non_cash", Emit("ticket.transferred", {"ticket": "A001", "service": "non_cash"})),
    (b"NOSHOW A002", Emit("ticket.no_show", {"ticket": "A002"})),
    (b"WALK B004", Emit("ticket.walkout", {"ticket": "B004"})),
    (b"CTR OPEN c1", Emit("counter.opened", {"counter": "c1"})),
    (
        b"CTR OPEN c1 high t7",
        Emit("counter.opened", {"counter": "c1", "kind": "high", "teller": "t7"}),
    ),
    (b"CTR OPEN c2 - t8", Emit("counter.opened", {"counter": "c2", "teller": "t8"})),
    (b"CTR OPEN c3 vip", Emit("counter.opened", {"counter": "c3", "kind": "vip"})),
    (b"CTR PAUSE c1 lunch", Emit("counter.paused", {"counter": "c1", "reason": "lunch"})),
    (
        b"CTR PAUSE c1  cash   count",
        Emit("counter.paused", {"counter": "c1", "reason": "cash count"}),
    ),
    (b"CTR PAUSE c1", Emit("counter.paused", {"counter": "c1"})),
    (b"CTR CLOSE c1", Emit("counter.closed", {"counter": "c1"})),
    (
        b"@1764054000.5 CALL A001 c1",
        Emit("ticket.called", {"ticket": "A001", "counter": "c1"}, 1764054000.5),
    ),
    (b"@1764054000 OPEN", Emit("branch.opened", {}, 1764054000.0)),
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=[g[0].decode() for g in GOLDEN])
@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_golden_lines(line: bytes, expected: Emit, ending: bytes) -> None:
    assert QueueLineCodec().feed(bytearray(line + ending)) == [expected]


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
    (result,) = QueueLineCodec().feed(bytearray(line + b"\r\n"))
    assert isinstance(result, BadFrame)
    assert result.reason == reason


def test_blank_lines_are_keepalives() -> None:
    assert QueueLineCodec().feed(bytearray(b"\r\n\n  \r\n")) == []


def test_partial_line_waits_for_the_rest() -> None:
    codec, buf = QueueLineCodec(), bytearray(b"CALL A0")
    assert codec.feed(buf) == []
    assert buf == b"CALL A0"
    buf += b"01 c1\r\nWALK"
    assert codec.feed(buf) == [Emit("ticket.called", {"ticket": "A001", "counter": "c1"})]
    assert buf == b"WALK"


def test_runaway_line_is_one_bad_frame_then_resync_at_the_newline() -> None:
    codec = QueueLineCodec()
    buf = bytearray(b"X" * (MAX_LINE + 10))
    assert [r.reason for r in codec.feed(buf) if isinstance(r, BadFrame)] == ["line_too_long"]
    buf += b"Y" * 5000  # still the same runaway line: dropped without another count
    assert codec.feed(buf) == []
    buf += b"ZZZ\r\nNOSHOW A9\r\n"
    assert codec.feed(buf) == [Emit("ticket.no_show", {"ticket": "A9"})]


def test_good_line_right_after_a_runaway_one_in_the_same_chunk() -> None:
    buf = bytearray(b"X" * (MAX_LINE * 3) + b"\r\nOPEN\r\nCLO")
    assert QueueLineCodec().feed(buf) == [
        BadFrame("line_too_long", f"{MAX_LINE * 3 + 1} bytes"),
        Emit("branch.opened", {}),
    ]
    assert buf == b"CLO"


@given(st.integers(min_value=MAX_LINE + 1, max_value=3 * MAX_LINE), st.integers(1, 700))
def test_runaway_line_in_any_chunking_costs_one_bad_frame(length: int, chunk: int) -> None:
    stream = b"Y" * length + b"\nWALK A1\n"
    codec, buf, results = QueueLineCodec(), bytearray(), []
    for start in range(0, len(stream), chunk):
        buf += stream[start : start + chunk]
        results += codec.feed(buf)
    assert [type(r).__name__ for r in results] == ["BadFrame", "Emit"]


def test_line_of_exactly_max_length_is_read() -> None:
    reason = "r" * (MAX_LINE - len("CTR PAUSE c1 "))
    line = f"CTR PAUSE c1 {reason}".encode()
    assert len(line) == MAX_LINE
    (result,) = QueueLineCodec().feed(bytearray(line + b"\r\n"))
    assert isinstance(result, Emit)
    assert result.fields["reason"] == reason[:200]  # the contract bounds free text at 200


def test_garbage_between_lines_costs_one_bad_frame() -> None:
    buf = bytearray(b"OPEN\r\n\x01\x02\xffjunk\r\nWALK A1\r\n")
    results = QueueLineCodec().feed(buf)
    assert [type(r).__name__ for r in results] == ["Emit", "BadFrame", "Emit"]


def test_printer_faults_and_recovery() -> None:
    codec = QueueLineCodec()
    out = codec.feed(bytearray(b"PRN PAPER_LOW\nPRN PAPER_LOW\nPRN PAPER_OUT\nPRN OK\nPRN OK\n"))
    assert out == [
        Emit("device.fault", {"fault": "paper_low"}),
        Emit("device.fault", {"fault": "paper_out"}),
        Emit("device.recovered", {"fault": "paper_low"}),
        Emit("device.recovered", {"fault": "paper_out"}),
    ]
    assert codec.feed(bytearray(b"@1764054000 PRN JAM\n")) == [
        Emit("device.fault", {"fault": "paper_jam"}, 1764054000.0)
    ]


def test_first_ok_after_a_restart_clears_every_printer_fault() -> None:
    # The agent may have restarted while a fault was active: it cannot know which.
    assert QueueLineCodec().feed(bytearray(b"PRN OK\n")) == [
        Emit("device.recovered", {"fault": f}) for f in ("paper_jam", "paper_low", "paper_out")
    ]


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    codec, buf = QueueLineCodec(), bytearray()
    for chunk in chunks:
        buf += chunk
        for result in codec.feed(buf):
            assert isinstance(result, Emit | BadFrame)
        assert b"\n" not in buf  # every complete line was consumed
        assert len(buf) <= MAX_LINE + 1


@given(st.lists(st.sampled_from([g[0] for g in GOLDEN] + [b[0] for b in BAD]), max_size=30))
def test_any_mix_of_lines_yields_one_result_each(lines: list[bytes]) -> None:
    # PRN lines aside (none here), every non-blank line gives exactly one result.
    results = QueueLineCodec().feed(bytearray(b"".join(line + b"\r\n" for line in lines)))
    assert len(results) == len(lines)
