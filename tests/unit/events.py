"""Events for floor-model tests, written short: ``E(ev.TicketIssued, seq, ts, ticket=…)``."""

from __future__ import annotations

from typing import Any

from branchwatch.contract import events as ev


def E(cls: type[ev.Event], seq: int, ts: float, device: str = "q1", **fields: Any) -> ev.Event:
    """An event of contract version 1 from ``device``."""
    return cls(v=1, seq=seq, ts=ts, device=device, **fields)
