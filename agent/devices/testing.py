"""A recording :class:`~agent.devices.base.DeviceContext` for tests, emulators and demos.

Ships with the code, as pymodbus ships its fake transports: a new protocol's
tests need nothing else. :class:`Recorded` is the readable view of an event
that tests compare against (its type, time and own fields).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Final, NamedTuple, Self

from agent.devices.frames import BadFrame, Result
from branchwatch.contract.events import Event
from branchwatch.contract.ids import LOCAL_ID_PATTERN, SITE_ID_PATTERN, TOKEN_PATTERN

HEADER_FIELDS: Final = frozenset(("v", "seq", "ts", "device"))
CONTRACT_PATTERNS: Final = frozenset((LOCAL_ID_PATTERN, TOKEN_PATTERN, SITE_ID_PATTERN))


class Recorded(NamedTuple):
    type: str
    ts: float
    fields: dict[str, Any]


def recorded(event: Event) -> Recorded:
    """``event`` as (type, ts, its own fields); optional fields left out are not shown."""
    fields = {
        name: value
        for name in event.__struct_fields__
        if name not in HEADER_FIELDS and (value := getattr(event, name)) is not None
    }
    return Recorded(str(event.__struct_config__.tag), event.ts, fields)


def readable(results: Iterable[Result]) -> list[Recorded | BadFrame]:
    """A codec's results with each event shown as :class:`Recorded`."""
    return [r if isinstance(r, BadFrame) else recorded(r) for r in results]


class RecordingContext:
    """Keeps what a device reported; :meth:`wait_for` waits on it with a timeout."""

    def __init__(self, device_id: str = "dev-1", clock: Callable[[], float] = time.time) -> None:
        self._device_id = device_id
        self.clock = clock
        self.received: list[Event] = []
        self.links: list[bool] = []
        self.bad: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    @property
    def device_id(self) -> str:
        return self._device_id

    def now(self) -> float:
        return self.clock()

    def emit(self, event: Event) -> None:
        self.received.append(event)
        self._changed.set()

    def set_link(self, up: bool) -> None:
        self.links.append(up)
        self._changed.set()

    def bad_frame(self, reason: str, detail: str = "") -> None:
        self.bad.append((reason, detail))
        self._changed.set()

    @property
    def events(self) -> list[Recorded]:
        return [recorded(event) for event in self.received]

    @property
    def link_up(self) -> bool | None:
        return self.links[-1] if self.links else None

    def types(self) -> list[str]:
        return [str(event.__struct_config__.tag) for event in self.received]

    def bad_reasons(self) -> list[str]:
        return [reason for reason, _ in self.bad]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked after every report); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


class SchemaChecks:
    """Every schema check and JSON encode run on this thread inside ``with``, by name.

    A schema check is a msgspec conversion or typed decode (parsing JSON into
    plain dicts and lists checks nothing), or a regex match with one of the
    contract's id patterns (what a hand-written id check looks like).
    Tests use it to show an event is checked once between its device and the spool.
    """

    def __init__(self) -> None:
        self.checks: list[str] = []
        self.encodes = 0

    def __enter__(self) -> Self:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self._previous)

    def _profile(self, frame: FrameType, event: str, fn: Any) -> None:
        if event != "c_call":
            return
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, re.Pattern):
            if owner.pattern in CONTRACT_PATTERNS:
                self.checks.append(f"regex {owner.pattern}")
            return
        module = owner.__name__ if inspect.ismodule(owner) else type(owner).__module__
        if not module.startswith("msgspec"):
            return
        if fn.__name__ == "convert" or (fn.__name__ == "decode" and _typed(owner)):
            self.checks.append(f"msgspec {fn.__name__}")
        elif fn.__name__ == "encode":
            self.encodes += 1


def _typed(decoder: object) -> bool:
    """False only for a Decoder without a type; ``msgspec.json.decode`` may have one."""
    return inspect.ismodule(decoder) or getattr(decoder, "type", Any) is not Any
