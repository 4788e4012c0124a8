"""What a simulated agent keeps of what it sent, to answer ``replay`` (in memory)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Final

from branchwatch.agentlink import Batch, batches

DEFAULT_RETENTION_EVENTS: Final = 100_000
DEFAULT_RETENTION_SECONDS: Final = 24 * 3600.0


class SentEvents:
    """Encoded events in seq order, bounded by count and by age (event time).

    The simulator's counterpart of the agent's spool, for
    :func:`branchwatch.agentlink.replay_batches`.
    """

    def __init__(
        self,
        max_events: int = DEFAULT_RETENTION_EVENTS,
        max_age: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self.max_age = max_age
        self._items: deque[tuple[int, float, bytes]] = deque(maxlen=max_events)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, seq: int, ts: float, payload: bytes) -> None:
        items = self._items
        items.append((seq, ts, payload))
        horizon = ts - self.max_age
        while items[0][1] < horizon:
            items.popleft()

    def oldest_held_seq(self) -> int | None:
        return self._items[0][0] if self._items else None

    def last_sent_seq(self) -> int:
        """The newest seq held (paho has it, sent or queued); 0 for none."""
        return self._items[-1][0] if self._items else 0

    def held_batches(self, from_seq: int, to_seq: int) -> Iterator[Batch]:
        """Every held event with ``from_seq <= seq <= to_seq``, in payloads."""
        return batches(self._between(from_seq, to_seq))

    def _between(self, from_seq: int, to_seq: int) -> list[tuple[int, bytes]]:
        # Replays ask for a recent tail: walk back from the newest.
        rows: list[tuple[int, bytes]] = []
        for seq, _, payload in reversed(self._items):
            if seq < from_seq:
                break
            if seq <= to_seq:
                rows.append((seq, payload))
        rows.reverse()
        return rows
