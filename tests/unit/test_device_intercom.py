"""intercom-line: golden lines → events, refused lines, floor notice encoding, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.devices.frames import BadFrame
from agent.devices.intercom_line import (
    MAX_LINE,
    MAX_NOTE_TEXT,
    IntercomCodec,
    decode_note,
    encode_note,
    sanitise,
)
from agent.devices.testing import Recorded, readable
from agent.errors import FrameError
from branchwatch.contract import Event

NOW = 1_764_053_400.0  # the agent's clock: the time of a line without its own


def feed(line: bytes) -> list[Recorded | BadFrame]:
    return readable(IntercomCodec(lambda: NOW).feed(bytearray(line)))


GOLDEN = [
    (b"IN 1 s42", Recorded("position.staffed", NOW, {"position": 1, "staff": "s42"})),
    (b"IN 5", Recorded("position.staffed", NOW, {"position": 5})),
    (b"OUT 1 s42", Recorded("position.vacated", NOW, {"position": 1, "staff": "s42"})),
    (b"OUT 1", Recorded("position.vacated", NOW, {"position": 1})),
    (
        b"CALL 1 7 vip",
        Recorded("intercom.call", NOW, {"from_position": 1, "to_position": 7, "reason": "vip"}),
    ),
    (b"CALL 3 * backup", Recorded("intercom.call", NOW, {"from_position": 3, "reason": "backup"})),
    (
        b"CALL 2 1 handoff",
        Recorded("intercom.call", NOW, {"from_position": 2, "to_position": 1, "reason": "handoff"}),
    ),
    (b"ACK 3 n-17", Recorded("intercom.ack", NOW, {"position": 3, "notice": "n-17"})),
    (b"ACK 99", Recorded("intercom.ack", NOW, {"position": 99})),
    (
        b"@1764054000 IN 2 s.li",
        Recorded("position.staffed", 1764054000.0, {"position": 2, "staff": "s.li"}),
    ),
]


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=[g[0].decode() for g in GOLDEN])
def test_golden_lines(line: bytes, expected: Recorded) -> None:
    assert feed(line + b"\r\n") == [expected]


BAD = [
    (b"IN 0 s42", "bad_args"),
    (b"IN 100", "bad_args"),
    (b"IN one", "bad_args"),
    (b"IN 01x", "bad_args"),
    (b"IN", "bad_args"),
    (b"IN 1 s 42", "bad_args"),
    (b"OUT 1 -s", "bad_args"),
    (b"CALL 1 7", "bad_args"),
    (b"CALL 1 7 coffee", "bad_args"),
    (b"CALL 1 0 vip", "bad_args"),
    (b"CALL 1 x vip", "bad_args"),  # not "every post": only * says that
    (b"CALL 1 100 vip", "bad_args"),
    (b"ACK 3 n 17", "bad_args"),
    (b"RING 3", "unknown_verb"),
    (b"NOTE n-1 3 hello", "unknown_verb"),  # our own output echoed back is not input
    (b"IN \xb2", "not_ascii"),
]


@pytest.mark.parametrize(("line", "reason"), BAD, ids=[b[0].decode("latin-1") for b in BAD])
def test_refused_lines(line: bytes, reason: str) -> None:
    (result,) = feed(line + b"\n")
    assert isinstance(result, BadFrame)
    assert result.reason == reason


def test_note_encoding() -> None:
    assert (
        encode_note("n-42", 3, "Post 1 empty: cover it")
        == b"NOTE n-42 3 Post 1 empty: cover it\r\n"
    )
    assert encode_note("n-1", 1, "") == b"NOTE n-1 1\r\n"
    assert decode_note(b"NOTE n-42 3 Post 1 empty\r\n") == ("n-42", 3, "Post 1 empty")


@pytest.mark.parametrize(
    "text",
    [
        "cover\r\nACK 1 n-99",
        "a\nb",
        "a\rb",
        "a\x00b",
        "a\x85b",
        "a\u2028b",
        "tab\there",
        "\x1b[2Jclear",
    ],
)
def test_note_text_cannot_inject_a_second_line(text: str) -> None:
    encoded = encode_note("n-1", 2, text)
    assert encoded.count(b"\n") == 1 and encoded.endswith(b"\r\n")
    assert encoded.count(b"\r") == 1
    assert all(ch.isprintable() for ch in encoded[:-2].decode())


def test_note_text_is_bounded_and_unicode_kept() -> None:
    encoded = encode_note("n-1", 2, "é" * 500)
    (_, _, text) = decode_note(encoded) or ("", 0, "")
    assert text == "é" * MAX_NOTE_TEXT


def test_note_refuses_bad_id_or_position() -> None:
    with pytest.raises(FrameError):
        encode_note("n 1", 2, "x")
    with pytest.raises(FrameError):
        encode_note("n-1\r\nIN", 2, "x")
    with pytest.raises(FrameError):
        encode_note("n-1", 0, "x")


@given(st.text(max_size=400))
def test_any_text_encodes_to_one_bounded_line(text: str) -> None:
    encoded = encode_note("n-1", 7, text)
    assert encoded.count(b"\n") == 1
    assert len(sanitise(text)) <= MAX_NOTE_TEXT


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    codec, buf = IntercomCodec(lambda: NOW), bytearray()
    for chunk in chunks:
        buf += chunk
        assert all(isinstance(r, Event | BadFrame) for r in codec.feed(buf))
        assert len(buf) <= MAX_LINE + 1
