"""What a simulated agent keeps of what it sent (for ``replay``), and how it packs messages."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Final

from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES

DEFAULT_RETENTION_EVENTS: Final = 100_000
DEFAULT_RETENTION_SECONDS: Final = 24 * 3600.0


class SentEvents:
    """Encoded events in seq order, bounded by count and by age (event time)."""

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

    @property
    def first_seq(self) -> int | None:
        return self._items[0][0] if self._items else None

    def since(self, from_seq: int) -> list[bytes]:
        """Every held event with ``seq >= from_seq``, in seq order."""
        items = self._items
        if not items or items[-1][0] < from_seq:
            return []
        if items[0][0] >= from_seq:
            return [payload for _, _, payload in items]
        # Replays ask for a recent tail: walk back from the newest.
        tail: list[bytes] = []
        for seq, _, payload in reversed(items):
            if seq < from_seq:
                break
            tail.append(payload)
        tail.reverse()
        return tail


def pack(
    payloads: Sequence[bytes],
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Iterator[bytes]:
    """MQTT payloads for encoded events: one object alone, else JSON arrays within the
    contract's bounds (≤ ``max_events`` events, ≤ ``max_bytes`` bytes), order kept."""
    if len(payloads) == 1:
        yield payloads[0]
        return
    chunk: list[bytes] = []
    size = 2  # the brackets
    for payload in payloads:
        extra = len(payload) + (1 if chunk else 0)
        if chunk and (len(chunk) >= max_events or size + extra > max_bytes):
            yield _array(chunk)
            chunk, size, extra = [], 2, len(payload)
        chunk.append(payload)
        size += extra
    if chunk:
        yield _array(chunk) if len(chunk) > 1 else chunk[0]


def _array(chunk: list[bytes]) -> bytes:
    return b"[" + b",".join(chunk) + b"]"
