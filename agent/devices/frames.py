"""What codecs produce, shared by every kind: contract events, refused frames, line framing.

A codec never talks to the agent core directly: it returns contract events
(the structs of :mod:`branchwatch.contract.events`, built with the
:data:`~agent.devices.base.UNSTAMPED` header) or :class:`BadFrame` (a refused
frame, counted by the device through ``context.bad_frame``). So a codec is a
pure function of its input and its clock, and a property test can check that
any byte string yields only these two things.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, NamedTuple, TypeVar

import msgspec

from agent.devices.base import UNSTAMPED
from branchwatch.contract.events import Event
from branchwatch.contract.ids import LOCAL_ID_PATTERN

LOCAL_ID_RE: Final = re.compile(LOCAL_ID_PATTERN)
# Device clocks before 2001 or after 2100 are not clocks: refuse the frame, not the day.
MIN_DEVICE_TS: Final = 978_307_200.0
MAX_DEVICE_TS: Final = 4_102_444_800.0

E = TypeVar("E", bound=Event)


class BadFrame(NamedTuple):
    """A frame the codec refused: ``reason`` is a short token, ``detail`` says what was seen."""

    reason: str
    detail: str = ""


Result = Event | BadFrame


def to_event(cls: type[E], ts: float, fields: Mapping[str, object]) -> E | BadFrame:
    """The words of a frame as a ``cls`` event: their one schema check on the way to the spool.

    Ids, service tokens, positions, kinds and lengths are checked by the
    contract's own schema (msgspec, the rules the collector applies), so an
    event the agent spools is never rejected later; what it refuses is a
    ``bad_args`` frame naming the field.
    """
    try:
        return msgspec.convert({**fields, **UNSTAMPED, "ts": ts}, cls)
    except msgspec.ValidationError as exc:
        return BadFrame("bad_args", f"{cls.__struct_config__.tag}: {exc}")


def parse_device_ts(token: str) -> float | None:
    """``@1764054000.5`` → seconds; None when it is not a plausible Unix time."""
    try:
        value = float(token[1:])
    except ValueError:
        return None
    if not MIN_DEVICE_TS <= value <= MAX_DEVICE_TS:  # also refuses nan and inf
        return None
    return value


class LineDecoder:
    """Splits a byte stream into lines of at most ``max_line`` bytes (pymodbus-style framer).

    ``decode(buf) -> (consumed, line | BadFrame | None)``: None with 0 consumed
    means "need more bytes". Lines end with LF, an optional CR before it is
    dropped. A line longer than ``max_line`` is refused once and everything up
    to the next LF is skipped, so one runaway line counts as one bad frame
    and the next good line is read again (resync at the newline).
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._skipping = False

    def decode(self, buf: bytes | bytearray) -> tuple[int, bytes | BadFrame | None]:
        if self._skipping:  # the tail of a runaway line: drop it, up to and with its LF
            end = buf.find(b"\n")
            if end < 0:
                return len(buf), None
            self._skipping = False
            return end + 1, None
        end = buf.find(b"\n", 0, self.max_line + 2)  # +2: room for the CR LF themselves
        if end >= 0:
            line = bytes(buf[:end])
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                return end + 1, BadFrame("line_too_long", f"{len(line)} bytes")
            return end + 1, line
        if len(buf) <= self.max_line + 1:
            return 0, None  # a line in the making
        # Runaway line: refuse it once; if its LF is not here yet, drop what comes up to it.
        end = buf.find(b"\n")
        if end < 0:
            self._skipping = True
            return len(buf), BadFrame("line_too_long", f"no newline in {len(buf)} bytes")
        return end + 1, BadFrame("line_too_long", f"{end} bytes")


def split_words(line: bytes) -> tuple[float | None, list[str]] | BadFrame:
    """ASCII words of a line, with an optional leading ``@<unix seconds>`` device time."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return BadFrame("not_ascii", repr(line[:40]))
    if not text.isprintable():
        return BadFrame("control_chars", repr(line[:40]))
    words = text.split()
    ts = None
    if words and words[0].startswith("@"):
        ts = parse_device_ts(words[0])
        if ts is None:
            return BadFrame("bad_timestamp", words[0][:40])
        words = words[1:]
    return ts, words


def local_id(value: str) -> bool:
    return LOCAL_ID_RE.match(value) is not None
