"""The collector's snapshot rests between slices of work, never holding the store lock."""

from __future__ import annotations

import threading

from collector.app import SNAPSHOT_REST, SNAPSHOT_SLICE, PacedLock

BRANCH = SNAPSHOT_SLICE * 0.4  # each branch's encode, on the fake clock


def test_rests_after_each_slice_with_the_lock_released() -> None:
    lock = threading.Lock()
    now = [0.0]
    rests: list[float] = []

    def rest(seconds: float) -> None:
        assert not lock.locked(), "rested with the store lock held"
        rests.append(seconds)

    paced = PacedLock(lock, clock=lambda: now[0], sleep=rest)
    held_inside = []
    for _ in range(10):
        with paced:
            held_inside.append(lock.locked())
            now[0] += BRANCH
    assert all(held_inside)
    # A slice is 2.5 branches: a rest after the 3rd, 6th and 9th.
    assert rests == [SNAPSHOT_REST] * 3
    assert not lock.locked()
