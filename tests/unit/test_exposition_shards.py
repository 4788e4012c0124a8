"""The exposition by shard, as gzip members, and rendered off the store lock.

Shards: parameters, the stable shard of a branch, the union of the shards is the whole.
Members: valid gzip, a concatenation of them is the text, only changed families
recompressed. The lock: a scrape takes the runtime's lock one branch at a time (shown by
another thread applying events between two of them), a branch dirtied or forgotten while
it is being compressed, and scrapes running beside ingest leave a correct cache.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import Final

import pytest

from branchwatch.contract import events as ev
from branchwatch.contract import metrics
from branchwatch.contract.messages import Status
from collector.exposition import (
    ALL,
    SHARD_COUNTS,
    Shard,
    ShardError,
    parse_shard,
    shard_of,
    texts,
)
from collector.exposition.members import BlockText
from collector.store import Store
from tests.support import Samples, parse_metrics
from tests.unit.events import E
from tests.unit.test_exposition import CONFIG, LIMITS, scenario

FAMILY_ORDER: Final = [family.name for family in metrics.FLOOR]
KEYS: Final = [(region, f"b{n:03d}") for region in ("north", "south") for n in range(30)]


def filled(keys: list[tuple[str, str]] = KEYS) -> Store:
    store = Store(CONFIG, thresholds=LIMITS)
    for region, branch in keys:
        scenario(store, region, branch)
    return store


def text_of(store: Store, shard: Shard) -> str:
    return b"".join(texts(store.render_chunks(shard).members)).decode()


def sorted_lines(store: Store, shard: Shard) -> list[str]:
    return sorted(text_of(store, shard).splitlines())


def held_text(store: Store, key: tuple[str, str]) -> BlockText:
    """The cached text of the block of ``key`` (the object itself)."""
    block = store.exposition.block(key)
    assert block is not None, key
    return block.text


# parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "shard"),
    [("", ALL), ("shard=0&shards=1", ALL), ("shards=4&shard=3", Shard(3, 4)),
     ("shard=63&shards=64", Shard(63, 64)), ("other=1", ALL), ("shard=02&shards=4", Shard(2, 4))],
)  # fmt: skip
def test_good_shard_parameters(query: str, shard: Shard) -> None:
    assert parse_shard(query) == shard


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("shard=1", "only one of shard and shards"),
        ("shards=4", "only one of shard and shards"),
        ("shard=&shards=4", "whole numbers"),
        ("shard=a&shards=4", "whole numbers"),
        ("shard=-1&shards=4", "whole numbers"),
        ("shard=+1&shards=4", "whole numbers"),
        ("shard=1.0&shards=4", "whole numbers"),
        ("shard=%D9%A1&shards=4", "whole numbers"),  # an Arabic-Indic one: int() takes it
        ("shard=1&shard=2&shards=4", "once each"),
        ("shard=4&shards=4", "shard=4 is not below shards=4"),
        ("shard=0&shards=0", "shards=0 is not a divisor of 64"),
        ("shard=0&shards=3", "shards=3 is not a divisor of 64"),
        ("shard=1&shards=48", "shards=48 is not a divisor of 64"),
        ("shard=0&shards=65", "shards=65 is not a divisor of 64"),
        ("shard=0&shards=128", "shards=128 is not a divisor of 64"),
        ("shard=0&shards=99999999", "whole numbers"),
    ],
)
def test_bad_shard_parameters_say_what_is_wrong_in_one_line(query: str, says: str) -> None:
    with pytest.raises(ShardError) as error:
        parse_shard(query)
    message = str(error.value)
    assert says in message and "\n" not in message
    assert "N one of 1, 2, 4, 8, 16, 32, 64 and 0 <= I < N" in message


def test_a_shard_that_would_cut_through_blocks_cannot_be_made() -> None:
    for index, count in ((1, 3), (0, 0), (4, 4), (0, 128)):
        with pytest.raises(ValueError, match=f"no shard {index} of {count}"):
            Shard(index, count)


def test_a_branchs_shard_is_the_crc32_of_its_name_and_never_changes() -> None:
    # Pinned: two collectors of different versions must put a branch in the same shard.
    assert zlib.crc32(b"north/b000") == 0xB2C199B0
    assert [shard_of("north", "b000", n) for n in (1, 2, 4, 64)] == [0, 0, 0, 48]
    assert [shard_of("north", "b001", n) for n in (2, 4, 64)] == [
        zlib.crc32(b"north/b001") % n for n in (2, 4, 64)
    ]


# the union of the shards -----------------------------------------------------------------


def declared(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]


@pytest.mark.parametrize("count", SHARD_COUNTS)
def test_the_shards_together_are_the_whole_exposition_each_branch_in_one(count: int) -> None:
    store = filled()
    whole = parse_metrics(text_of(store, ALL))
    union: Samples = {}
    branches_seen: list[tuple[str, str]] = []
    for index in range(count):
        text = text_of(store, Shard(index, count))
        assert declared(text) == FAMILY_ORDER  # every header once, in order, even if empty
        samples = parse_metrics(text)
        assert not samples.keys() & union.keys()
        union.update(samples)
        held = {
            (dict(labels)["region"], dict(labels)["branch"])
            for name, labels in samples
            if name == metrics.BRANCH_OPEN.name
        }
        assert all(shard_of(region, branch, count) == index for region, branch in held)
        branches_seen += held
    assert union == whole
    assert sorted(branches_seen) == sorted(KEYS)


def test_a_shards_list_is_cached_and_dropped_only_when_one_of_its_branches_changes() -> None:
    store = filled()
    lists = {shard: store.render_chunks(shard) for shard in (ALL, Shard(0, 2), Shard(1, 2))}
    assert all(store.render_chunks(shard) is chunks for shard, chunks in lists.items())
    region, branch = next(key for key in KEYS if shard_of(*key, 2) == 1)
    store.apply_events(region, branch, "a1", [E(ev.BranchClosed, 17, 1400.0)], received=1400.0)
    assert store.render_chunks(Shard(0, 2)) is lists[Shard(0, 2)]  # not its branch
    changed = store.render_chunks(Shard(1, 2))
    assert changed is not lists[Shard(1, 2)]
    assert store.render_chunks(ALL) is not lists[ALL]
    closed = f'branchwatch_branch_open{{region="{region}",branch="{branch}"}} 0\n'
    assert closed in b"".join(texts(changed.members)).decode()


def test_a_shard_renders_only_its_own_dirty_branches() -> None:
    store = filled()
    store.render_chunks(ALL)
    first = {key: held_text(store, key) for key in KEYS}
    for n, (region, branch) in enumerate(KEYS):
        store.apply_events(region, branch, "a1", [E(ev.BranchClosed, 17, 1400.0 + n)], 1400.0)
    store.render_chunks(Shard(0, 2))
    for key in KEYS:
        same = held_text(store, key) is first[key]
        assert same == (shard_of(*key, 2) == 1), key  # shard 1's wait for their scrape
    assert "} 0\n" in text_of(store, Shard(1, 2))


def test_a_forgotten_branch_leaves_its_shard() -> None:
    store = filled([("north", "b000"), ("north", "b001")])
    shard = Shard(shard_of("north", "b000", 4), 4)
    assert 'branch="b000"' in text_of(store, shard)
    store.apply_events("north", "b001", "a1", [E(ev.BranchClosed, 17, 1400.0)], received=2000.0)
    assert store.expire_stale(now=2500.0, max_age=600.0) == [("north", "b000")]
    assert 'branch="b000"' not in text_of(store, shard)
    assert declared(text_of(store, shard)) == FAMILY_ORDER


# gzip members ----------------------------------------------------------------------------


def test_the_members_are_one_gzip_stream_of_the_text_and_none_is_empty() -> None:
    store = filled()
    chunks = store.render_chunks(Shard(1, 4))
    assert all(member[:2] == b"\x1f\x8b" for member in chunks.members)
    body = b"".join(chunks.members)
    assert len(body) == chunks.gzip_length
    text = gzip.decompress(body)  # one stream of members, as a gzip reader takes it
    assert text == b"".join(texts(chunks.members)) and len(text) == chunks.text_length
    assert text.decode() == text_of(store, Shard(1, 4))


def test_an_empty_family_has_no_member() -> None:
    store = filled([("north", "b000")])
    assert store.exposition.block(("north", "b000")) is None
    store.render_chunks()
    held = held_text(store, ("north", "b000"))
    notices = FAMILY_ORDER.index(metrics.NOTICES.name)  # notices off: no series
    assert held.members[notices] == b""
    assert held.members[FAMILY_ORDER.index(metrics.BRANCH_OPEN.name)] != b""


def test_a_re_render_recompresses_only_the_families_that_changed() -> None:
    store = filled([("north", "b000")])
    store.render_chunks()
    before = held_text(store, ("north", "b000"))
    status = Status(v=1, state="online", session=2, ts=1500.0, version="1.2.3")
    assert store.apply_status("north", "b000", "a1", status, received=1500.0)
    store.render_chunks()
    after = held_text(store, ("north", "b000"))
    assert after is not before
    changed = [
        FAMILY_ORDER[i]
        for i, (old, new) in enumerate(zip(before.members, after.members, strict=True))
        if old is not new
    ]
    # The status moved last seen and dropped the devices it no longer lists.
    assert metrics.AGENT_LAST_SEEN.name in changed
    assert metrics.BRANCH_OPEN.name not in changed and metrics.WAIT_SECONDS.name not in changed


# off the store lock ----------------------------------------------------------------------


# A scrape with one dirty branch lets the lock go after: 1 listing the dirty branches,
# 2 placing them in blocks, 3 rendering the branch, 4 noting its block's branches; from
# then until the next hold (which keeps it) the block is being compressed.
COMPRESSING: Final = 4


class SteppedLock:
    """The runtime's lock, calling ``after_release`` each time the scraping thread lets
    it go (so another thread can take it right then)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scraper: threading.Thread | None = None
        self.after_release: Callable[[], None] = lambda: None
        self.releases = 0

    def __enter__(self) -> bool:
        return self.lock.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.lock.release()
        if threading.current_thread() is self.scraper:
            self.releases += 1
            self.after_release()


def in_another_thread(action: Callable[[], None]) -> None:
    """Run ``action`` in a thread of its own (as ingest would) and wait for it: it must
    get the lock while the scrape is between two holds of it."""
    done = threading.Event()

    def run() -> None:
        action()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(10), "the other thread could not take the lock"


def scrape_with(store: Store, lock: SteppedLock, shard: Shard = ALL) -> str:
    lock.scraper = threading.current_thread()
    try:
        with_lock = store.render_chunks(shard, lock)
    finally:
        lock.scraper = None
    return b"".join(texts(with_lock.members)).decode()


def test_ingest_runs_between_two_branches_of_a_scrape() -> None:
    store = filled()  # every branch dirty
    lock = SteppedLock()
    applied: list[int] = []

    def ingest() -> None:
        with lock:
            n = len(applied)
            status = Status(v=1, state="online", session=3, ts=2000.0 + n)
            store.apply_status("north", "b000", "a1", status, received=2000.0 + n)
            applied.append(n)

    lock.after_release = lambda: in_another_thread(ingest)
    scrape_with(store, lock)
    # The lock was let go after listing the dirty branches and after each branch rendered
    # (each rendered branch's members kept in the next hold): never held across them.
    assert lock.releases >= len(KEYS) + 1
    assert len(applied) == lock.releases
    assert store.exposition.block(("north", "b000")) is not None


def test_a_branch_changed_while_compressed_is_rendered_again_next_scrape() -> None:
    store = filled([("north", "b000")])
    lock = SteppedLock()

    def close() -> None:
        with lock:
            store.apply_events("north", "b000", "a1", [E(ev.BranchClosed, 17, 1400.0)], 1400.0)

    lock.after_release = lambda: in_another_thread(close) if lock.releases == COMPRESSING else None
    first = scrape_with(store, lock)
    assert 'branchwatch_branch_open{region="north",branch="b000"} 1\n' in first
    assert 'branchwatch_branch_open{region="north",branch="b000"} 0\n' in store.render()


def test_a_branch_forgotten_while_compressed_is_not_brought_back() -> None:
    store = filled([("north", "b000"), ("north", "b001")])
    store.apply_events("north", "b001", "a1", [E(ev.BranchClosed, 17, 1400.0)], received=2000.0)
    store.render()
    # b000 alone is dirty, last heard at 1300.
    store.apply_events("north", "b000", "a1", [E(ev.BranchClosed, 17, 1400.0)], received=1300.0)
    lock = SteppedLock()

    def expire() -> None:
        with lock:
            assert store.expire_stale(now=2500.0, max_age=600.0) == [("north", "b000")]

    lock.after_release = lambda: in_another_thread(expire) if lock.releases == COMPRESSING else None
    text = scrape_with(store, lock)
    assert 'branch="b000"' not in text and 'branch="b001"' in text
    assert store.exposition.block(("north", "b000")) is None


def test_scrapes_beside_ingest_leave_the_cache_as_a_fresh_render() -> None:
    store = filled()
    lock = threading.Lock()
    shards = [ALL, *(Shard(i, 4) for i in range(4)), Shard(5, 8)]
    stop = threading.Event()
    errors: list[BaseException] = []
    expired: list[tuple[str, str]] = []

    def scrape(shard: Shard) -> None:
        try:
            while not stop.is_set():
                store.render_chunks(shard, lock)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scrape, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    try:
        for n in range(300):
            region, branch = KEYS[n % len(KEYS)]
            with lock:
                status = Status(v=1, state="online", session=3, ts=3000.0 + n)
                store.apply_status(region, branch, "a1", status, received=3000.0 + n)
                if n == 150:
                    # Those heard before 3100 go, and come back with their next status.
                    expired += store.expire_stale(now=3700.0, max_age=600.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors
    # The same state rendered from nothing: a store restored from this one's snapshot.
    fresh = Store.restore(CONFIG, store.snapshot(), thresholds=LIMITS)
    assert len(expired) == 9 and store.branch_count == fresh.branch_count == len(KEYS)
    for shard in shards:  # the same lines; branches may come in another order
        assert sorted_lines(store, shard) == sorted_lines(fresh, shard), shard
