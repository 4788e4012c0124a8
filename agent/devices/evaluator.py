"""The ``evaluator-frame`` kind: pad frames → rating windows → evaluation events.

Options: ``window`` (seconds a rating is accepted after a request, default
10), ``counter`` (the counter of every pad on this line) and/or ``pads``
(pad address → counter, for a bus of several pads). Besides the link loop the
device runs a timer that expires open windows on time, link up or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from agent.devices import evaluator_frame
from agent.devices.base import Clock, DeviceConfig, DeviceContext
from agent.devices.evaluation_window import EvaluationWindows
from agent.devices.frames import BadFrame, Result, local_id
from agent.devices.stream import StreamDevice, deliver, number_option
from agent.errors import DeviceConfigError


def _pads(config: DeviceConfig) -> tuple[str | None, dict[int, str]]:
    counter: Any = config.options.get("counter")
    pads: Any = config.options.get("pads", {})
    if counter is not None and not (isinstance(counter, str) and local_id(counter)):
        raise DeviceConfigError(f"device {config.id}: option 'counter' must be a counter id")
    if not isinstance(pads, dict):
        raise DeviceConfigError(
            f"device {config.id}: option 'pads' must be a table address = counter"
        )
    by_address: dict[int, str] = {}
    for address, name in pads.items():
        if not (str(address).isdigit() and 1 <= int(address) <= 255):
            raise DeviceConfigError(f"device {config.id}: pad address {address!r} is not 1..255")
        if not (isinstance(name, str) and local_id(name)):
            raise DeviceConfigError(
                f"device {config.id}: pad {address}: {name!r} is not a counter id"
            )
        by_address[int(address)] = name
    if counter is None and not by_address:
        raise DeviceConfigError(f"device {config.id}: set option 'counter' or 'pads'")
    return counter, by_address


class EvaluatorCodec:
    """Pad bytes → results, through the rating windows; ``clock`` gives "now"."""

    def __init__(
        self,
        windows: EvaluationWindows,
        counter: str | None,
        pads: dict[int, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.windows = windows
        self.counter = counter
        self.pads = pads
        self.clock = clock

    def reset(self) -> None:
        """Framing is stateless (:func:`evaluator_frame.decode`); windows outlive a link."""

    def feed(self, buf: bytearray) -> list[Result]:
        out: list[Result] = []
        while buf:
            consumed, frame = evaluator_frame.decode(buf)
            del buf[:consumed]
            if isinstance(frame, BadFrame):
                out.append(frame)
            elif frame is not None:
                out.extend(self.apply(frame, self.clock()))
            if consumed == 0:
                break
        return out

    def apply(self, frame: evaluator_frame.PadFrame, now: float) -> list[Result]:
        counter = self.pads.get(frame.pad, self.counter)
        if counter is None:
            return [BadFrame("unknown_pad", f"pad {frame.pad}")]
        if frame.code == "request":
            return self.windows.request(counter, now, frame.ticket, frame.teller)
        if frame.code == "rating" and frame.rating is not None:
            return self.windows.rating(counter, frame.rating, now)
        return self.windows.cancel(counter, now)


class EvaluatorDevice(StreamDevice):
    kind = "evaluator"

    def __init__(
        self, config: DeviceConfig, context: DeviceContext, clock: Clock | None = None
    ) -> None:
        counter, pads = _pads(config)
        self.windows = EvaluationWindows(number_option(config, "window", 10.0))
        self.clock = clock or context.now
        self._changed = asyncio.Event()
        codec = EvaluatorCodec(self.windows, counter, pads, self._now)
        super().__init__(config, context, codec, frozenset({"window", "counter", "pads"}))

    def _now(self) -> float:
        self._changed.set()  # a frame may have opened a window: re-arm the timer
        return self.clock()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._expiry_timer())
            group.create_task(super().run())

    async def _expiry_timer(self) -> None:
        while True:
            self._changed.clear()
            deadline = self.windows.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock()) + 0.001
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                deliver(self.context, self.windows.expire(self.clock()))
