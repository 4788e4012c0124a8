"""The exposition cache's blocks: branches of one class compressed together.

A block's text spliced from fresh and kept rows (members.rebuild); blocks lying in one
shard of every allowed count; a changed branch's values in its block beside its mates'
unchanged ones; a forgotten branch leaving its block (also while it is compressed); a
new branch joining its class's last block with room.
"""

from __future__ import annotations

import zlib
from itertools import count, islice
from typing import Final

import pytest

from branchwatch.contract import events as ev
from branchwatch.contract import metrics
from collector.exposition import BLOCK_BRANCHES, SHARD_COUNTS, Block, Shard, texts
from collector.exposition.members import EMPTY, FAMILIES, rebuild
from collector.store import Store
from tests.support import parse_metrics
from tests.unit.events import E
from tests.unit.test_exposition import CONFIG, LIMITS, branch_text, scenario
from tests.unit.test_exposition_shards import (
    COMPRESSING,
    SteppedLock,
    in_another_thread,
    scrape_with,
)

OPEN: Final = metrics.BRANCH_OPEN.name
FAMILY_ORDER: Final = [family.name for family in metrics.FLOOR]


def in_class(cls: int, many: int, region: str = "north") -> list[tuple[str, str]]:
    """``many`` branch keys whose crc32 % 64 is ``cls``."""
    names = (f"b{n:05d}" for n in count())
    fits = (name for name in names if zlib.crc32(f"{region}/{name}".encode()) % 64 == cls)
    return [(region, name) for name in islice(fits, many)]


def filled(keys: list[tuple[str, str]]) -> Store:
    store = Store(CONFIG, thresholds=LIMITS)
    for region, branch in keys:
        scenario(store, region, branch)
    return store


def block_of(store: Store, key: tuple[str, str]) -> Block:
    block = store.exposition.block(key)
    assert block is not None, key
    return block


def fragments(*texts_: bytes) -> tuple[bytes, ...]:
    """A branch's text: the given fragments first, the other families empty."""
    return texts_ + (b"",) * (FAMILIES - len(texts_))


def family_texts(held_members: tuple[bytes, ...]) -> list[bytes]:
    return [b"".join(texts([one])) for one in held_members]


# splicing ----------------------------------------------------------------------------------


def test_a_rebuild_splices_fresh_rows_among_kept_ones_and_recompresses_only_what_changed() -> None:
    a, b, c, d = (("r", name) for name in "abcd")
    first = rebuild(
        EMPTY,
        [a, b, c],
        {a: fragments(b"a0\n", b"a1\n"), b: fragments(b"", b"b1\n"), c: fragments(b"c0\n")},
    )
    assert family_texts(first.members)[:3] == [b"a0\nc0\n", b"a1\nb1\n", b""]
    assert first.members[2:] == (b"",) * (FAMILIES - 2)
    assert first.text_length == 12
    # b goes, a changes family 1 only, d comes; c is kept as it was and moves first.
    second = rebuild(first, [c, a, d], {a: fragments(b"a0\n", b"A1\n"), d: fragments(b"d0\n")})
    assert family_texts(second.members)[:2] == [b"c0\na0\nd0\n", b"A1\n"]
    assert second.rows == (c, a, d) and second.text_length == 12
    # Only a changed (same rows): family 0's member is kept, family 1's made again.
    third = rebuild(second, [c, a, d], {a: fragments(b"a0\n", b"a1 again\n")})
    assert third.members[0] is second.members[0]
    assert family_texts(third.members)[:2] == [b"c0\na0\nd0\n", b"a1 again\n"]
    assert rebuild(third, [c, a, d], {c: fragments(b"c0\n")}).members == third.members


# blocks and shards -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowded() -> Store:
    """40 branches in class 5 (three blocks), 20 in class 37, 3 in class 63."""
    store = filled([*in_class(5, 40), *in_class(37, 20), *in_class(63, 3, "south")])
    store.render_chunks()
    return store


def test_a_class_is_split_in_blocks_of_at_most_16(crowded: Store) -> None:
    keys = in_class(5, 40)
    blocks = {id(block_of(crowded, key)): block_of(crowded, key) for key in keys}
    assert sorted(len(block.text.rows) for block in blocks.values()) == [8, 16, 16]
    assert all(block.count == len(block.text.rows) <= BLOCK_BRANCHES for block in blocks.values())
    assert all(block.cls == 5 for block in blocks.values())


@pytest.mark.parametrize("shards", SHARD_COUNTS)
def test_blocks_keep_shards_exact(crowded: Store, shards: int) -> None:
    every = [*in_class(5, 40), *in_class(37, 20), *in_class(63, 3, "south")]
    for key in every:
        rows = block_of(crowded, key).text.rows
        assert len({zlib.crc32("/".join(row).encode()) % shards for row in rows}) == 1
    served: list[tuple[str, str]] = []
    for index in range(shards):
        chunks = crowded.render_chunks(Shard(index, shards))
        samples = parse_metrics(b"".join(texts(chunks.members)).decode())
        held = [
            (dict(labels)["region"], dict(labels)["branch"])
            for name, labels in samples
            if name == OPEN
        ]
        assert all(zlib.crc32("/".join(key).encode()) % shards == index for key in held)
        served += held
    assert sorted(served) == sorted(every)  # each branch exactly once


def test_a_changed_branch_shows_its_new_values_and_its_mates_keep_theirs() -> None:
    keys = in_class(9, 3)
    store = filled(keys)
    store.render_chunks()
    block = block_of(store, keys[0])
    assert all(block_of(store, key) is block for key in keys)
    before = block.text
    mates_before = [branch_text(store, key, OPEN) for key in (keys[0], keys[2])]
    region, branch = keys[1]
    store.apply_events(region, branch, "a1", [E(ev.BranchClosed, 17, 1400.0)], received=1400.0)
    text = store.render()
    assert block.text is not before and block.text.rows == before.rows
    assert f'{OPEN}{{region="{region}",branch="{branch}"}} 0\n' in text
    assert (
        branch_text(store, keys[1], OPEN)
        == f'{OPEN}{{region="north",branch="{branch}"}} 0\n'.encode()
    )
    assert [branch_text(store, key, OPEN) for key in (keys[0], keys[2])] == mates_before
    changed = {
        FAMILY_ORDER[i]
        for i, (old, new) in enumerate(zip(before.members, block.text.members, strict=True))
        if old is not new
    }
    assert OPEN in changed and metrics.WAIT_SECONDS.name not in changed


def test_a_forgotten_branch_leaves_its_block_and_a_new_one_joins_the_last_with_room() -> None:
    keys = in_class(11, BLOCK_BRANCHES + 2)
    store = filled(keys[: BLOCK_BRANCHES + 1])
    store.render_chunks()
    blocks = {id(block_of(store, key)): block_of(store, key) for key in keys[:-1]}
    full, lone = sorted(blocks.values(), key=lambda block: -block.count)
    assert (full.count, lone.count) == (BLOCK_BRANCHES, 1)
    gone = full.text.rows[3]
    for region, branch in keys[: BLOCK_BRANCHES + 1]:  # all but gone heard again at 2000
        if (region, branch) != gone:
            store.apply_events(region, branch, "a1", [E(ev.BranchClosed, 17, 1400.0)], 2000.0)
    assert store.expire_stale(now=2500.0, max_age=600.0) == [gone]
    text = store.render()
    assert f'branch="{gone[1]}"' not in text
    assert all(f'branch="{key[1]}"' in text for key in full.text.rows)
    assert gone not in full.text.rows and len(full.text.rows) == full.count == BLOCK_BRANCHES - 1
    assert store.exposition.block(gone) is None
    scenario(store, *keys[-1])  # a new branch: the class's last block with room
    assert f'branch="{keys[-1][1]}"' in store.render()
    assert block_of(store, keys[-1]) is lone and lone.count == 2


def test_a_branch_forgotten_while_its_block_is_compressed_is_gone_from_that_scrape() -> None:
    keys = in_class(13, 2)
    store = filled(keys)
    for region, branch in keys:  # keys[0] heard last at 1300, keys[1] at 2000
        received = 1300.0 if (region, branch) == keys[0] else 2000.0
        store.apply_events(region, branch, "a1", [E(ev.BranchClosed, 17, 1400.0)], received)
    lock = SteppedLock()
    expired: list[tuple[str, str]] = []

    def expire() -> None:
        with lock:
            expired.extend(store.expire_stale(now=2500.0, max_age=600.0))

    # The first block's branches rendered and noted: it is being compressed with both.
    releases = COMPRESSING + 1  # two branches rendered
    lock.after_release = lambda: in_another_thread(expire) if lock.releases == releases else None
    text = scrape_with(store, lock)
    assert expired == [keys[0]]
    assert f'branch="{keys[0][1]}"' not in text and f'branch="{keys[1][1]}"' in text
    assert block_of(store, keys[1]).text.rows == (keys[1],)
