"""Script items → the bytes a device of each protocol would send.

An item is raw ``bytes`` (sent as is: garbage, half frames), a ``str``, or a
number (a pause, handled by the emulator). For the line protocols a string is
one line (CR LF added). For ``evaluator-frame`` a string is a pad command:
``request PAD [TICKET [TELLER]]``, ``rate PAD 1..4``, ``cancel PAD``.
The whole format, with examples: docs/devices/emulators.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from agent.devices import evaluator_frame

Item = bytes | str | float


def _line(item: str) -> bytes:
    return item.encode() + b"\r\n"


def _pad(item: str) -> bytes:
    words = item.split()
    if len(words) < 2 or not words[1].isdigit():
        raise ValueError(f"pad command {item!r}: expected request/rate/cancel PAD …")
    verb, pad, rest = words[0], int(words[1]), words[2:]
    if verb == "request" and len(rest) <= 2:
        return evaluator_frame.encode_request(pad, *rest)
    if verb == "rate" and len(rest) == 1 and rest[0].isdigit():
        return evaluator_frame.encode_rating(pad, int(rest[0]))
    if verb == "cancel" and not rest:
        return evaluator_frame.encode_cancel(pad)
    raise ValueError(f"pad command {item!r}: expected request/rate/cancel PAD …")


TEXT_ENCODERS: Final[dict[str, Callable[[str], bytes]]] = {
    "queue-line": _line,
    "intercom-line": _line,
    "evaluator-frame": _pad,
}


def encode_item(protocol: str, item: bytes | str) -> bytes:
    if isinstance(item, bytes):
        return item
    try:
        encoder = TEXT_ENCODERS[protocol]
    except KeyError:
        raise ValueError(f"no emulator for {protocol!r} (known: {sorted(TEXT_ENCODERS)})") from None
    return encoder(item)


def parse_script_line(line: str) -> Item | None:
    """A line of a script file: ``# comment``, ``sleep 1.5``, ``hex 02ff…``, or an item."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    word, _, rest = text.partition(" ")
    if word == "sleep":
        return float(rest)
    if word == "hex":
        return bytes.fromhex(rest)
    return text
