"""Hostile serial frames per codec, seeded, and the count each must get.

Each hostile frame is built to be refused as exactly one bad frame by its
codec (the line codecs), or to start with exactly one refusal of a known
reason (``evaluator-frame``: a bad checksum or length also leaves its tail to
the resync, counted as ``garbage`` once per read it spans). Valid frames are
mixed in as controls: each must come out as its event, so a flood never
swallows a good frame. The expected results come from the codec fed the whole
stream at once, in this process (:func:`oracle`); the device under test reads
the same bytes through a real pty, in whatever chunks the kernel hands it.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.devices import evaluator_frame as ef
from agent.devices.evaluation_window import EvaluationWindows
from agent.devices.evaluator import EvaluatorCodec
from agent.devices.frames import BadFrame, Result
from agent.devices.intercom_line import MAX_LINE as INTERCOM_MAX_LINE
from agent.devices.intercom_line import IntercomCodec
from agent.devices.queue_line import MAX_LINE as QUEUE_MAX_LINE
from agent.devices.queue_line import QueueLineCodec

NOW: Final = 1_764_054_000.0
CONTROL_EVERY: Final = 10  # one valid frame (or pad pair) after every 10 hostile ones
PAD_COUNTER: Final = "c9"
# Reasons a single evaluator frame is refused for first; its tail may add ``garbage``.
RESYNC_REASON: Final = "garbage"


@dataclass(frozen=True)
class Stream:
    protocol: str
    data: bytes
    hostile: int  # hostile frames in it
    controls: int  # valid frames in it (events they must make)


def codec(protocol: str) -> Callable[[bytearray], list[Result]]:
    """A fresh codec of ``protocol``, as the device builds it (clock fixed)."""
    if protocol == "queue-line":
        return QueueLineCodec(lambda: NOW).feed
    if protocol == "intercom-line":
        return IntercomCodec(lambda: NOW).feed
    windows = EvaluationWindows(3600.0)
    return EvaluatorCodec(windows, PAD_COUNTER, {}, lambda: NOW).feed


def oracle(stream: Stream) -> tuple[Counter[str], int]:
    """(bad frames by reason, events) of the whole stream fed to the codec at once."""
    results = codec(stream.protocol)(bytearray(stream.data))
    bad = Counter(r.reason for r in results if isinstance(r, BadFrame))
    return bad, sum(1 for r in results if not isinstance(r, BadFrame))


def hostile_stream(protocol: str, count: int, seed: int) -> Stream:
    rng = random.Random(seed)
    make = _pad_frame if protocol == "evaluator-frame" else _line_maker(protocol)
    parts: list[bytes] = []
    controls = 0
    for index in range(count):
        parts.append(make(rng))
        if index % CONTROL_EVERY == CONTROL_EVERY - 1 or index == count - 1:
            # The stream ends with a control: once its event is out, all is counted.
            control, events = _control(protocol, index)
            parts.append(control)
            controls += events
    return Stream(protocol, b"".join(parts), count, controls)


def _control(protocol: str, index: int) -> tuple[bytes, int]:
    if protocol == "queue-line":
        return f"ISSUE H{index:07d} cash\r\n".encode(), 1
    if protocol == "intercom-line":
        return f"IN 5 h{index}\r\n".encode(), 1
    return ef.encode_request(1, f"H{index}") + ef.encode_rating(1, 1 + index % 4), 2


# -- line protocols -------------------------------------------------------------------------------

BAD_TIMES: Final = ("x", "1e99", "-5", "12", "nan")
_PRINTABLE: Final = string.ascii_letters + string.digits + string.punctuation + " "


def _line_maker(protocol: str) -> Callable[[random.Random], bytes]:
    max_line = QUEUE_MAX_LINE if protocol == "queue-line" else INTERCOM_MAX_LINE
    verbs = ("ISSUE", "CALL", "START", "END", "CTR", "PRN", "XFER") if protocol == "queue-line" \
        else ("IN", "OUT", "CALL", "ACK")  # fmt: skip
    feed = codec(protocol)

    def words(rng: random.Random) -> str:
        return " ".join(
            "".join(rng.choices(_PRINTABLE.replace(" ", ""), k=rng.randint(1, 12)))
            for _ in range(rng.randint(0, 4))
        )

    mutations: list[Callable[[random.Random], bytes]] = [
        lambda rng: f"{rng.choice(['FOO', 'ISSUED', 'issue', 'X'])} {words(rng)}".encode(),
        lambda rng: f"{rng.choice(verbs)} {words(rng)}".encode(),
        lambda rng: f"{rng.choice(verbs)} A!{rng.randint(0, 9)} x".encode(),
        lambda rng: rng.choice(verbs).encode() + bytes([rng.randint(0x80, 0xFF)]) + b" 1",
        lambda rng: f"{rng.choice(verbs)} 1\x07 s1".encode(),
        lambda rng: (
            f"@{rng.choice(['x', '1e99', '-5', '12', 'nan'])} {rng.choice(verbs)} 1".encode()
        ),
        lambda rng: rng.choice(verbs).encode() + b" " + b"Z" * rng.randint(max_line, 3 * max_line),
        lambda rng: bytes(rng.choice([b for b in range(256) if b != 0x0A]) for _ in range(20)),
    ]

    def make(rng: random.Random) -> bytes:
        while True:
            line = rng.choice(mutations)(rng) + b"\r\n"
            results = feed(bytearray(line))
            # Exactly one refusal: a mutation that happens to be valid, or blank, is drawn again.
            if len(results) == 1 and isinstance(results[0], BadFrame):
                return line

    return make


# -- evaluator-frame ----------------------------------------------------------------------------


def _framed(pad: int, code: int, data: bytes) -> bytes:
    body = bytes((ef.MIN_LEN + len(data), pad, code)) + data
    return bytes((ef.STX,)) + body + bytes((ef.crc8(body),))


def _pad_frame(rng: random.Random) -> bytes:
    """One hostile pad frame whose first refusal has a known reason."""
    kind = rng.randrange(5)
    if kind == 0:  # pad address 0
        return _framed(0, rng.choice([0x10, 0x21, 0x30]), b"")
    if kind == 1:  # a code no pad sends
        code = rng.choice([c for c in range(256) if c not in (0x10, 0x21, 0x22, 0x23, 0x24)])
        return _framed(rng.randint(1, 255), code, b"\x01" if code == 0x30 else b"")
    if kind == 2:  # a request whose ticket is no id
        data = rng.choice([b"\xff\xfe", b"A B", b"A\x1fB\x1fC", b"-x"])
        return _framed(rng.randint(1, 255), ef.CODE_REQUEST, data)
    # Refused by its framing: only the start byte is dropped, so the tail must not hold
    # another one (it is skipped as garbage up to the next frame).
    while True:
        if kind == 3:  # a bad checksum
            good = ef.encode_request(rng.randint(1, 255), "T1")
            frame = good[:-1] + bytes((good[-1] ^ 0x5A,))
        else:  # a length byte out of range
            frame = bytes((ef.STX, rng.choice([0, 1, 65, 200, 255]))) + b"\x11\x12\x13"
        if ef.STX not in frame[1:]:
            return frame
