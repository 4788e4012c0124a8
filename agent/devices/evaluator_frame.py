"""``evaluator-frame``: the evaluator pad's binary framing (docs/devices/evaluator-frame.md).

::

    STX 0x02 | LEN (1 byte, 2..64) | PAYLOAD (LEN bytes) | CRC-8 (1 byte)
    PAYLOAD = PAD (1 byte, 1..255) | CODE (1 byte) | DATA (LEN - 2 bytes)

CRC-8/SMBUS (polynomial 0x07, init 0x00, no reflection, no final XOR) over
LEN and PAYLOAD. Codes: 0x10 request (DATA: optional ASCII ``ticket`` or
``ticket 0x1F teller``), 0x21..0x24 rating 1..4, 0x30 cancel.

:func:`decode` is a pure function of the buffer. Resync: bytes before a
STX are skipped and counted once; on a bad length or checksum only the STX is
dropped and the scan restarts after it, so a frame hidden behind a false
STX is still found.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from agent.devices.frames import BadFrame, local_id
from branchwatch.contract.ids import Rating

STX: Final = 0x02
MIN_LEN: Final = 2
MAX_LEN: Final = 64
CODE_REQUEST: Final = 0x10
CODE_CANCEL: Final = 0x30
RATING_CODES: Final[dict[int, Rating]] = {
    0x21: "very_satisfied",
    0x22: "satisfied",
    0x23: "neutral",
    0x24: "unsatisfied",
}
UNIT_SEPARATOR: Final = b"\x1f"


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8: Final = _crc8_table()


def crc8(data: bytes | bytearray | memoryview) -> int:
    """CRC-8/SMBUS: check value of b"123456789" is 0xF4."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


class PadFrame(NamedTuple):
    pad: int
    code: str  # "request", "rating" or "cancel"
    rating: Rating | None = None
    ticket: str | None = None
    teller: str | None = None


def decode(buf: bytes | bytearray) -> tuple[int, PadFrame | BadFrame | None]:
    """``(consumed, frame)``; ``(0, None)`` means "need more bytes"."""
    if not buf:
        return 0, None
    if buf[0] != STX:
        start = buf.find(STX)
        skipped = len(buf) if start < 0 else start
        return skipped, BadFrame("garbage", f"{skipped} bytes before a start byte")
    if len(buf) < 2:
        return 0, None
    length = buf[1]
    if not MIN_LEN <= length <= MAX_LEN:
        return 1, BadFrame("bad_length", f"length byte {length}")
    total = 3 + length
    if len(buf) < total:
        return 0, None
    frame = memoryview(buf)[1:total]
    if crc8(frame[:-1]) != frame[-1]:
        return 1, BadFrame("bad_checksum", bytes(frame[:8]).hex())
    return total, _payload(bytes(frame[1:-1]))


def _payload(payload: bytes) -> PadFrame | BadFrame:
    pad, code, data = payload[0], payload[1], payload[2:]
    if pad == 0:
        return BadFrame("bad_pad", "pad address 0")
    if code in RATING_CODES and not data:
        return PadFrame(pad, "rating", rating=RATING_CODES[code])
    if code == CODE_CANCEL and not data:
        return PadFrame(pad, "cancel")
    if code != CODE_REQUEST:
        return BadFrame("unknown_code", f"code 0x{code:02x} with {len(data)} data bytes")
    if not data:
        return PadFrame(pad, "request")
    parts = data.split(UNIT_SEPARATOR)
    try:
        words = [part.decode("ascii") for part in parts]
    except UnicodeDecodeError:
        return BadFrame("bad_data", data.hex()[:40])
    if len(words) > 2 or not all(local_id(w) for w in words):
        return BadFrame("bad_data", repr(data[:40]))
    return PadFrame(pad, "request", ticket=words[0], teller=words[1] if len(words) > 1 else None)


def encode(pad: int, code: int, data: bytes = b"") -> bytes:
    """One frame (what a pad sends; the emulator and tests use it)."""
    if not 1 <= pad <= 255 or not 0 <= code <= 255:
        raise ValueError(f"pad {pad} / code {code} out of range")
    body = bytes((MIN_LEN + len(data), pad, code)) + data
    if body[0] > MAX_LEN:
        raise ValueError(f"data of {len(data)} bytes is too long for one frame")
    return bytes((STX,)) + body + bytes((crc8(body),))


def encode_request(pad: int, ticket: str | None = None, teller: str | None = None) -> bytes:
    parts = [p for p in (ticket, teller) if p is not None]
    if teller is not None and ticket is None:
        raise ValueError("a teller needs a ticket in a request frame")
    return encode(pad, CODE_REQUEST, UNIT_SEPARATOR.join(p.encode("ascii") for p in parts))


def encode_rating(pad: int, stars: int) -> bytes:
    """``stars`` 1 (very satisfied) .. 4 (unsatisfied): the pad's four keys."""
    if not 1 <= stars <= 4:
        raise ValueError(f"rating key {stars} is not 1..4")
    return encode(pad, 0x20 + stars)


def encode_cancel(pad: int) -> bytes:
    return encode(pad, CODE_CANCEL)
