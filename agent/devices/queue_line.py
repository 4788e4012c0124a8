"""``queue-line``: the queue machine's ASCII line protocol (docs/devices/queue-line.md).

One event per line, ``[@<unix seconds>] VERB ARGS…`` ending in LF (CR LF
accepted), at most :data:`MAX_LINE` bytes. The codec is pure: bytes in,
contract events / :class:`~agent.devices.frames.BadFrame` out, the words of
each line checked once, by the contract's schema
(:func:`~agent.devices.frames.to_event`). The only state is which printer
faults are active, so ``PRN OK`` can name what recovered (the contract's
``device.recovered`` carries the fault).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from agent.devices.base import UNSTAMPED, DeviceConfig, DeviceContext
from agent.devices.frames import BadFrame, LineDecoder, Result, split_words, to_event
from agent.devices.stream import StreamDevice
from branchwatch.contract import events as ev

MAX_LINE: Final = 256
PRINTER_FAULTS: Final = {"PAPER_LOW": "paper_low", "PAPER_OUT": "paper_out", "JAM": "paper_jam"}

Args = list[str]
# A verb's arguments by field name, for the event type they make; None: wrong arguments.
# The values are not checked here: to_event applies the contract once.
Parsed = tuple[type[ev.Event], dict[str, object]] | None


def _issue(args: Args) -> Parsed:
    if len(args) == 3 and args[2] == "V":
        return ev.TicketIssued, {"ticket": args[0], "service": args[1], "vip": True}
    return (ev.TicketIssued, {"ticket": args[0], "service": args[1]}) if len(args) == 2 else None


def _two(cls: type[ev.Event], first: str, second: str) -> Callable[[Args], Parsed]:
    return lambda args: (cls, {first: args[0], second: args[1]}) if len(args) == 2 else None


def _start(args: Args) -> Parsed:
    if len(args) not in (2, 3):
        return None
    return ev.ServiceStarted, dict(zip(("ticket", "counter", "teller"), args, strict=False))


def _ticket_only(cls: type[ev.Event]) -> Callable[[Args], Parsed]:
    return lambda args: (cls, {"ticket": args[0]}) if len(args) == 1 else None


def _day(cls: type[ev.Event]) -> Callable[[Args], Parsed]:
    return lambda args: None if args else (cls, {})


def _counter(args: Args) -> Parsed:
    """``CTR OPEN c1 [high|low|vip|-] [teller]``, ``CTR PAUSE c1 [reason…]``, ``CTR CLOSE c1``."""
    if len(args) < 2:
        return None
    action, counter, rest = args[0], args[1], args[2:]
    if action == "OPEN" and len(rest) <= 2:
        fields: dict[str, object] = {"counter": counter}
        if rest and rest[0] != "-":
            fields["kind"] = rest[0]
        if len(rest) == 2:
            fields["teller"] = rest[1]
        return ev.CounterOpened, fields
    if action == "PAUSE":
        # The reason is free text: the rest of the line, words joined by one space.
        return ev.CounterPaused, {"counter": counter, "reason": " ".join(rest)[:200] or None}
    if action == "CLOSE" and not rest:
        return ev.CounterClosed, {"counter": counter}
    return None


VERBS: Final[dict[str, Callable[[Args], Parsed]]] = {
    "OPEN": _day(ev.BranchOpened),
    "CLOSE": _day(ev.BranchClosed),
    "ISSUE": _issue,
    "CALL": _two(ev.TicketCalled, "ticket", "counter"),
    "START": _start,
    "END": _two(ev.ServiceEnded, "ticket", "counter"),
    "XFER": _two(ev.TicketTransferred, "ticket", "service"),
    "NOSHOW": _ticket_only(ev.TicketNoShow),
    "WALK": _ticket_only(ev.TicketWalkout),
    "CTR": _counter,
}


class QueueLineCodec:
    """Bytes of a queue machine → contract events; ``clock`` stamps lines without ``@`` time."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lines = LineDecoder(MAX_LINE)
        self.active_faults: set[str] = set()
        # Until the first PRN line we do not know what is active (the agent may have
        # restarted mid-fault), so the first PRN OK clears every printer fault.
        self._printer_known = False

    def reset(self) -> None:
        self.lines = LineDecoder(MAX_LINE)

    def decode(self, buf: bytes | bytearray) -> tuple[int, list[Result] | None]:
        """``(consumed, results)``: results None with 0 consumed = need more bytes."""
        consumed, line = self.lines.decode(buf)
        if line is None:
            return consumed, None
        if isinstance(line, BadFrame):
            return consumed, [line]
        return consumed, self.parse_line(line)

    def feed(self, buf: bytearray) -> list[Result]:
        """Decode every complete line in ``buf`` and remove it from ``buf``."""
        out: list[Result] = []
        while buf:
            consumed, results = self.decode(buf)
            del buf[:consumed]
            if results:
                out.extend(results)
            if consumed == 0:
                break
        return out

    def parse_line(self, line: bytes) -> list[Result]:
        parsed = split_words(line)
        if isinstance(parsed, BadFrame):
            return [parsed]
        device_ts, words = parsed
        if not words:
            return []  # blank line (keep-alive): nothing to say
        ts = self.clock() if device_ts is None else device_ts
        verb, args = words[0], words[1:]
        if verb == "PRN":
            printer = self._printer(args, ts)
            if printer is None:
                return [BadFrame("bad_args", line.decode("ascii")[:80])]
            return printer
        parse = VERBS.get(verb)
        if parse is None:
            return [BadFrame("unknown_verb", verb[:40])]
        event = parse(args)
        if event is None:
            return [BadFrame("bad_args", line.decode("ascii")[:80])]
        cls, fields = event
        return [to_event(cls, ts, fields)]

    def _printer(self, args: Args, ts: float) -> list[Result] | None:
        if len(args) != 1:
            return None
        status = args[0]
        if status == "OK":
            known, self._printer_known = self._printer_known, True
            cleared = self.active_faults if known else set(PRINTER_FAULTS.values())
            self.active_faults = set()
            return [ev.DeviceRecovered(**UNSTAMPED, ts=ts, fault=f) for f in sorted(cleared)]
        fault = PRINTER_FAULTS.get(status)
        if fault is None:
            return None
        self._printer_known = True
        if fault in self.active_faults:
            return []  # a printer repeats its status; the fault is already active
        self.active_faults.add(fault)
        return [ev.DeviceFault(**UNSTAMPED, ts=ts, fault=fault)]


class QueueLineDevice(StreamDevice):
    kind = "queue"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        super().__init__(config, context, QueueLineCodec(context.now))
