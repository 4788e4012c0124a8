"""A recording :class:`~agent.devices.base.DeviceContext` for tests, emulators and demos.

Ships with the code (DESIGN §10: the fake transport and its harness are part
of the adapter package), so a new protocol's tests need nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple


class Recorded(NamedTuple):
    type: str
    ts: float | None
    fields: dict[str, Any]


class RecordingContext:
    """Keeps what a device reported; :meth:`wait_for` waits on it with a timeout."""

    def __init__(self, device_id: str = "dev-1") -> None:
        self._device_id = device_id
        self.events: list[Recorded] = []
        self.links: list[bool] = []
        self.bad: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    @property
    def device_id(self) -> str:
        return self._device_id

    def emit(self, type: str, ts: float | None = None, **fields: Any) -> None:
        self.events.append(Recorded(type, ts, fields))
        self._changed.set()

    def set_link(self, up: bool) -> None:
        self.links.append(up)
        self._changed.set()

    def bad_frame(self, reason: str, detail: str = "") -> None:
        self.bad.append((reason, detail))
        self._changed.set()

    @property
    def link_up(self) -> bool | None:
        return self.links[-1] if self.links else None

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def bad_reasons(self) -> list[str]:
        return [reason for reason, _ in self.bad]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked after every report); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()
