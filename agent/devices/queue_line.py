"""``queue-line``: the queue machine's ASCII line protocol (docs/devices/queue-line.md).

One event per line, ``[@<unix seconds>] VERB ARGS…`` ending in LF (CR LF
accepted), at most :data:`MAX_LINE` bytes. The codec is pure: bytes in,
:class:`~agent.devices.frames.Emit` / :class:`~agent.devices.frames.BadFrame`
out. The only state is which printer faults are active, so ``PRN OK`` can
name what recovered (the contract's ``device.recovered`` carries the fault).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from agent.devices.base import DeviceConfig, DeviceContext
from agent.devices.frames import (
    BadFrame,
    Emit,
    LineDecoder,
    Result,
    checked,
    local_id,
    split_words,
    token,
)
from agent.devices.stream import StreamDevice

MAX_LINE: Final = 256
PRINTER_FAULTS: Final = {"PAPER_LOW": "paper_low", "PAPER_OUT": "paper_out", "JAM": "paper_jam"}
COUNTER_KINDS: Final = ("high", "low", "vip")

Args = list[str]


def _ids(args: Args, *checks: Callable[[str], bool]) -> bool:
    return len(args) == len(checks) and all(check(a) for check, a in zip(checks, args, strict=True))


def _issue(args: Args) -> Emit | None:
    vip = len(args) == 3 and args[2] == "V"
    if vip:
        args = args[:2]
    if not _ids(args, local_id, token):
        return None
    return Emit("ticket.issued", {"ticket": args[0], "service": args[1], "vip": vip})


def _ticket_counter(type_: str) -> Callable[[Args], Emit | None]:
    def parse(args: Args) -> Emit | None:
        if not _ids(args, local_id, local_id):
            return None
        return Emit(type_, {"ticket": args[0], "counter": args[1]})

    return parse


def _start(args: Args) -> Emit | None:
    teller = args[2] if len(args) == 3 else None
    if len(args) > 3 or not _ids(args[:2], local_id, local_id):
        return None
    if teller is not None and not local_id(teller):
        return None
    fields = {"ticket": args[0], "counter": args[1]}
    if teller is not None:
        fields["teller"] = teller
    return Emit("service.started", fields)


def _transfer(args: Args) -> Emit | None:
    if not _ids(args, local_id, token):
        return None
    return Emit("ticket.transferred", {"ticket": args[0], "service": args[1]})


def _ticket_only(type_: str) -> Callable[[Args], Emit | None]:
    def parse(args: Args) -> Emit | None:
        return Emit(type_, {"ticket": args[0]}) if _ids(args, local_id) else None

    return parse


def _day(type_: str) -> Callable[[Args], Emit | None]:
    return lambda args: None if args else Emit(type_, {})


def _counter(args: Args) -> Emit | None:
    """``CTR OPEN c1 [high|low|vip|-] [teller]``, ``CTR PAUSE c1 [reason…]``, ``CTR CLOSE c1``."""
    if len(args) < 2 or not local_id(args[1]):
        return None
    action, counter, rest = args[0], args[1], args[2:]
    if action == "OPEN" and len(rest) <= 2:
        fields: dict[str, object] = {"counter": counter}
        if rest and rest[0] != "-":
            if rest[0] not in COUNTER_KINDS:
                return None
            fields["kind"] = rest[0]
        if len(rest) == 2:
            if not local_id(rest[1]):
                return None
            fields["teller"] = rest[1]
        return Emit("counter.opened", fields)
    if action == "PAUSE":
        # The reason is free text: the rest of the line, words joined by one space.
        return Emit("counter.paused", {"counter": counter, "reason": " ".join(rest)[:200] or None})
    if action == "CLOSE" and not rest:
        return Emit("counter.closed", {"counter": counter})
    return None


VERBS: Final[dict[str, Callable[[Args], Emit | None]]] = {
    "OPEN": _day("branch.opened"),
    "CLOSE": _day("branch.closed"),
    "ISSUE": _issue,
    "CALL": _ticket_counter("ticket.called"),
    "START": _start,
    "END": _ticket_counter("service.ended"),
    "XFER": _transfer,
    "NOSHOW": _ticket_only("ticket.no_show"),
    "WALK": _ticket_only("ticket.walkout"),
    "CTR": _counter,
}


class QueueLineCodec:
    """Bytes of a queue machine → contract events; one instance per device connection."""

    def __init__(self) -> None:
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
        ts, words = parsed
        if not words:
            return []  # blank line (keep-alive): nothing to say
        verb, args = words[0], words[1:]
        if verb == "PRN":
            printer = self._printer(args)
            if printer is None:
                return [BadFrame("bad_args", line.decode("ascii")[:80])]
            return [e._replace(ts=ts) for e in printer]
        parse = VERBS.get(verb)
        if parse is None:
            return [BadFrame("unknown_verb", verb[:40])]
        emit = parse(args)
        if emit is None:
            return [BadFrame("bad_args", line.decode("ascii")[:80])]
        if emit.fields.get("reason", "") is None:
            del emit.fields["reason"]
        return [checked(emit._replace(ts=ts))]

    def _printer(self, args: Args) -> list[Emit] | None:
        if len(args) != 1:
            return None
        status = args[0]
        if status == "OK":
            known, self._printer_known = self._printer_known, True
            cleared = self.active_faults if known else set(PRINTER_FAULTS.values())
            self.active_faults = set()
            return [Emit("device.recovered", {"fault": f}) for f in sorted(cleared)]
        fault = PRINTER_FAULTS.get(status)
        if fault is None:
            return None
        self._printer_known = True
        if fault in self.active_faults:
            return []  # a printer repeats its status; the fault is already active
        self.active_faults.add(fault)
        return [Emit("device.fault", {"fault": fault})]


class QueueLineDevice(StreamDevice):
    kind = "queue"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        super().__init__(config, context, QueueLineCodec())
