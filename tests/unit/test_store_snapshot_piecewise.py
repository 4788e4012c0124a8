"""A snapshot taken branch by branch, the lock released between branches, is exact.

The runtime passes its lock to ``Store.snapshot_chunks``; these tests pass a real
``threading.Lock`` (wrapped to count or to pause between branches) and check that the
chunks are the bytes of one encode of the whole store, each made only when asked for
(the snapshot is written as it is encoded), restore to the same state, fail clearly on
a branch expired meanwhile, and let another thread apply events while the snapshot is
being made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import msgspec
import pytest

from branchwatch.contract.events import TicketIssued
from branchwatch.sim.generate import generate
from collector import snapshot as snapshot_format
from collector.errors import SnapshotError
from collector.floor.config import FloorConfig, FloorRules
from collector.snapshot import FORMAT, MAGIC, Layout
from collector.store import Store

CONFIG = FloorConfig()
BRANCHES = 40
RECEIVED = 2_000_000_000.0  # after every simulated event: none is late
WAIT = 10.0  # seconds a thread waits for the other before the test fails


def simulated_store(branches: int = BRANCHES) -> tuple[Store, list[tuple[str, str]]]:
    """The seeded simulator's first two hours of ``branches`` branches, and the branches
    in the order the store first saw them."""
    store = Store(CONFIG)
    seen: dict[tuple[str, str], None] = {}
    for region, branch, agent, event in generate(branches, 11, 2 * 3600, ts_origin=RECEIVED - 8000):
        store.apply_events(region, branch, agent, [event], received=RECEIVED)
        seen[(region, branch)] = None
    assert store.branch_count == branches
    return store, list(seen)


def whole_encode(store: Store, keys: list[tuple[str, str]]) -> bytes:
    """The snapshot as one msgpack encode of the whole document (how it was made before
    it was made branch by branch)."""
    document = {
        "format": FORMAT,
        "layout": Layout.of(FloorRules(CONFIG)),
        "branches": [store.branch_state(*key) for key in keys],
    }
    return MAGIC + msgspec.msgpack.encode(document, enc_hook=snapshot_format.encode_hook)


class CountingLock:
    """A real lock that counts its acquisitions and can run a step at the n-th release."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acquired = 0
        self.steps: dict[int, Callable[[], None]] = {}  # release number -> step after it

    def __enter__(self) -> None:
        self.lock.acquire()
        self.acquired += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.lock.release()
        step = self.steps.pop(self.acquired, None)
        if step is not None:
            step()


def test_chunks_are_the_bytes_of_one_encode_of_the_whole() -> None:
    store, keys = simulated_store()
    lock = CountingLock()
    chunks = store.snapshot_chunks(lock)
    head = next(chunks)
    assert lock.acquired == 1  # the list of branches only: each branch when it is asked for
    first = next(chunks)
    assert lock.acquired == 2
    rest = list(chunks)
    assert b"".join([head, first, *rest]) == whole_encode(store, keys) == store.snapshot()
    assert len(rest) == BRANCHES - 1  # the head, then each branch as encoded
    assert lock.acquired == BRANCHES + 1  # the list of branches, then one branch at a time


@pytest.mark.parametrize("branches", [0, 1, 15, 16, 65_535, 65_536])
def test_head_for_every_array_size(branches: int) -> None:
    """msgpack writes an array's length in 1, 3 or 5 bytes (below 16, below 65,536,
    beyond): the head before the first branch is right at each size."""
    rules = FloorRules(CONFIG)
    head = snapshot_format.head(rules, branches)
    document = {"format": FORMAT, "layout": Layout.of(rules), "branches": [0] * branches}
    whole = MAGIC + msgspec.msgpack.encode(document)  # each 0 is the one byte 0x00
    assert head == whole[: len(whole) - branches]


def test_restores_the_same_state() -> None:
    store, _ = simulated_store()
    data = b"".join(store.snapshot_chunks(CountingLock()))
    restored = Store.restore(CONFIG, data)
    assert restored.snapshot() == data
    assert restored.render() == store.render()
    now = RECEIVED + 60
    assert msgspec.json.encode(restored.branch_summaries(now)) == msgspec.json.encode(
        store.branch_summaries(now)
    )
    assert restored.replay_requests() == store.replay_requests()


def test_a_branch_created_meanwhile_is_in_the_next_snapshot() -> None:
    """The others are as they were when each was encoded."""
    store, keys = simulated_store()
    late = ("r-new", "b-new")
    lock = CountingLock()
    lock.steps[3] = lambda: feed_one(store, *late)  # after the list and two branches
    data = b"".join(store.snapshot_chunks(lock))
    restored = Store.restore(CONFIG, data)
    assert restored.branch_count == len(keys)
    assert data == whole_encode(store, keys)
    assert store.branch_state(*late) is not None and restored.branch_state(*late) is None
    assert Store.restore(CONFIG, store.snapshot()).branch_state(*late) is not None


def test_a_branch_expired_meanwhile_fails_the_snapshot_clearly() -> None:
    """The head has already given the number of branches: a branch gone before its turn
    cannot be left out. The runtime expires branches on the thread that takes snapshots,
    so this is a safety net: a clear SnapshotError, and the state file is not replaced."""
    store, keys = simulated_store()
    gone = keys[BRANCHES // 2]
    state = store.branch_state(*gone)
    assert state is not None
    state.last_received = RECEIVED - 7200  # the only branch silent for two hours

    def meanwhile() -> None:  # under the lock, between two branches
        assert store.expire_stale(RECEIVED, 3600) == [gone]

    lock = CountingLock()
    lock.steps[3] = meanwhile
    with pytest.raises(SnapshotError, match=f"{gone[0]}/{gone[1]} was removed"):
        b"".join(store.snapshot_chunks(lock))
    kept = [key for key in keys if key != gone]
    assert Store.restore(CONFIG, store.snapshot()).branch_count == len(kept)


def feed_one(store: Store, region: str, branch: str) -> None:
    """A ticket issued, from an agent new to the branch."""
    event = TicketIssued(v=1, seq=1, ts=RECEIVED - 10, device="q1", ticket="Z1", service="cash")
    store.apply_events(region, branch, "a-new", [event], received=RECEIVED)


def test_ingest_runs_while_a_snapshot_is_made() -> None:
    """Another thread takes the lock between two branches of a snapshot: the snapshot
    waits for it there, so with a lock held for the whole snapshot this test fails."""
    store, keys = simulated_store()
    lock = CountingLock()
    between = threading.Event()
    applied = threading.Event()
    last = keys[-1]  # encoded after the pause: the event applied meanwhile is in it

    def pause() -> None:
        between.set()
        assert applied.wait(WAIT), "the ingest thread never applied its event"

    lock.steps[2] = pause  # after the list and the first branch
    result: list[bytes] = []
    snapshotter = threading.Thread(
        target=lambda: result.append(b"".join(store.snapshot_chunks(lock)))
    )
    snapshotter.start()
    try:
        assert between.wait(WAIT), "the snapshot never released the lock between branches"
        assert lock.lock.acquire(timeout=WAIT), "the lock stayed held during the snapshot"
        try:
            feed_one(store, *last)
        finally:
            lock.lock.release()
        applied.set()
    finally:
        applied.set()
        snapshotter.join(WAIT)
    assert not snapshotter.is_alive() and len(result) == 1
    restored = Store.restore(CONFIG, result[0])
    state = restored.branch_state(*last)
    assert state is not None and "a-new" in state.agents  # applied mid-snapshot, and in it
    assert result[0] == store.snapshot()
