"""Contract events of one agent of one branch, fed straight into a collector Store."""

from __future__ import annotations

from typing import Any

from branchwatch.contract import events as ev
from collector.store import ApplyResult, Store
from collector.views import BranchDetail


class FloorFeed:
    """Agent ``a1`` of ``region``/``branch``; every event gets the next seq unless one is given.

    ``received`` is the arrival time of every event, and the ``now`` of :attr:`detail`.
    """

    def __init__(
        self,
        store: Store,
        *,
        region: str = "r1",
        branch: str = "b1",
        device: str = "d1",
        received: float = 9000.0,
    ) -> None:
        self.store = store
        self.region, self.branch, self.device, self.received = region, branch, device, received
        self.seq = 0

    def __call__(
        self, cls: type[ev.Event], ts: float, seq: int | None = None, **fields: Any
    ) -> ApplyResult:
        if seq is None:
            self.seq += 1
            seq = self.seq
        event = cls(v=1, seq=seq, ts=float(ts), device=self.device, **fields)
        return self.store.apply_events(
            self.region, self.branch, "a1", [event], received=self.received
        )

    @property
    def detail(self) -> BranchDetail:
        detail = self.store.branch_detail(self.region, self.branch, now=self.received)
        assert detail is not None
        return detail
