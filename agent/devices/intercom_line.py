"""``intercom-line``: post check-ins, calls and acks in; floor notices out.

See docs/devices/intercom-line.md.

Device → agent, one per line, ``[@<unix seconds>] VERB ARGS…`` LF-terminated::

    IN <position> [<staff>]            position.staffed
    OUT <position> [<staff>]           position.vacated (no staff: the post is empty)
    CALL <from> <to|*> <reason>        intercom.call (``*``: every post)
    ACK <position> [<notice id>]       intercom.ack

Agent → device: ``NOTE <notice id> <position> <text>`` CR LF (:func:`encode_note`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from agent.devices.base import DeviceConfig, DeviceContext
from agent.devices.frames import BadFrame, LineDecoder, Result, local_id, split_words, to_event
from agent.devices.stream import StreamDevice
from agent.errors import FrameError
from branchwatch.contract.events import (
    Event,
    IntercomAck,
    IntercomCall,
    PositionStaffed,
    PositionVacated,
)
from branchwatch.contract.messages import Notify

log = logging.getLogger(__name__)

MAX_LINE: Final = 128
MAX_NOTE_TEXT: Final = 200  # characters, the contract's bound on a notify text
# verb -> (event, name of the optional second word)
POST_VERBS: Final[dict[str, tuple[type[Event], str]]] = {
    "IN": (PositionStaffed, "staff"),
    "OUT": (PositionVacated, "staff"),
    "ACK": (IntercomAck, "notice"),
}


def _number(word: str) -> int | None:
    """A post number's digits (1..99 is the contract's to check); None when not digits."""
    # isdigit() alone accepts "²" and other Unicode digits; the line is ASCII by now.
    return int(word) if word.isascii() and word.isdigit() and len(word) <= 2 else None


def parse_line(line: bytes, now: float) -> list[Result]:
    """One line's result; ``now`` stamps a line without its own ``@`` time."""
    parsed = split_words(line)
    if isinstance(parsed, BadFrame):
        return [parsed]
    device_ts, words = parsed
    if not words:
        return []
    event = _parse(words[0], words[1:])
    if event is None:
        known = words[0] in (*POST_VERBS, "CALL")
        reason = "bad_args" if known else "unknown_verb"
        return [BadFrame(reason, line.decode("ascii")[:80])]
    cls, fields = event
    return [to_event(cls, now if device_ts is None else device_ts, fields)]


def _parse(verb: str, args: list[str]) -> tuple[type[Event], dict[str, object]] | None:
    """The event a verb makes, its fields unchecked (to_event applies the contract)."""
    position = _number(args[0]) if args else None
    if position is None:
        return None
    if verb in POST_VERBS and len(args) <= 2:
        cls, name = POST_VERBS[verb]
        return cls, {"position": position, **({name: args[1]} if len(args) == 2 else {})}
    if verb == "CALL" and len(args) == 3:
        call: dict[str, object] = {"from_position": position, "reason": args[2]}
        if args[1] != "*":
            to_position = _number(args[1])
            if to_position is None:
                return None
            call["to_position"] = to_position
        return IntercomCall, call
    return None


def sanitise(text: str) -> str:
    """One display line: control and other unprintable characters (CR, LF, NEL, U+2028…)
    become spaces, so a notice can never inject a second command line; bounded length."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.split())[:MAX_NOTE_TEXT]


def encode_note(notice_id: str, position: int, text: str) -> bytes:
    """``NOTE <id> <position> <text>\\r\\n`` in UTF-8; FrameError for a bad id or position."""
    if not local_id(notice_id):
        raise FrameError(f"notice id {notice_id!r} is not a valid id")
    if not 1 <= position <= 99:
        raise FrameError(f"position {position} is not 1..99")
    return f"NOTE {notice_id} {position} {sanitise(text)}".rstrip().encode() + b"\r\n"


def decode_note(line: bytes) -> tuple[str, int, str] | None:
    """The emulator's side of :func:`encode_note`: (id, position, text) or None."""
    parts = line.rstrip(b"\r\n").decode("utf-8", "replace").split(" ", 3)
    if len(parts) < 3 or parts[0] != "NOTE" or _number(parts[2]) is None:
        return None
    return parts[1], int(parts[2]), parts[3] if len(parts) == 4 else ""


class IntercomCodec:
    """Bytes of an intercom → contract events; ``clock`` stamps lines without ``@`` time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lines = LineDecoder(MAX_LINE)

    def reset(self) -> None:
        self.lines = LineDecoder(MAX_LINE)

    def feed(self, buf: bytearray) -> list[Result]:
        out: list[Result] = []
        while buf:
            consumed, line = self.lines.decode(buf)
            del buf[:consumed]
            if isinstance(line, BadFrame):
                out.append(line)
            elif line is not None:
                out.extend(parse_line(line, self.clock()))
            if consumed == 0:
                break
        return out


class IntercomDevice(StreamDevice):
    kind = "intercom"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        super().__init__(config, context, IntercomCodec(context.now))

    async def notify(self, command: Notify) -> bool:
        """Write the notice; False when the link is down (the collector escalates unacked ones)."""
        link = self.link
        if link is None:
            log.warning("device %s: link down, notice %s not delivered", self.config.id, command.id)
            return False
        try:
            await link.write(encode_note(command.id, command.position, command.text))
        except OSError as exc:
            log.warning("device %s: notice %s not delivered: %s", self.config.id, command.id, exc)
            return False
        return True
