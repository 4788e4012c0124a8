"""Log a repeating problem once, then a summary at most every ``interval`` seconds.

A device that sends garbage at 50 frames/s, a broker that refuses us every
second for an hour, a flood of rejected payloads: each must stay visible in the
log without drowning it. One :class:`ThrottledLog` per concern; ``key`` tells
apart problems that must each be reported (a reject reason, a device).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    """At most one line per ``key`` every ``interval`` seconds, naming how many were held back."""

    __slots__ = ("_clock", "_held", "_last", "interval", "logger")

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def log(self, level: int, msg: str, *args: object, key: object = None) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` ago.

        Returns whether the line was written. A written line after held-back ones
        ends with "(+N more since the last report)".
        """
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += f" (+{held} more since the last report)"
        self.logger.log(level, msg, *args)
        return True

    def warning(self, msg: str, *args: object, key: object = None) -> bool:
        return self.log(logging.WARNING, msg, *args, key=key)

    def error(self, msg: str, *args: object, key: object = None) -> bool:
        return self.log(logging.ERROR, msg, *args, key=key)

    def forget(self, key: object = None) -> None:
        """The problem is over: the next occurrence is logged at once."""
        self._last.pop(key, None)
        self._held.pop(key, None)
