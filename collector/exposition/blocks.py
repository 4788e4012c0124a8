"""Which branches the cache compresses together: blocks of up to 16 branches of a class.

A branch's class is its ``crc32 % 64`` (:func:`~collector.exposition.shards.branch_class`);
every shard a scrape may ask for is a union of classes, so a block lies in one shard
whatever the number of shards, and a shard is served as whole blocks. A branch keeps its
block until it is forgotten: a new one joins the last block of its class with room (or
a new block), a forgotten one leaves its block, and a block left empty is dropped.

16 a block: 8 held 1.60 KiB of gzip a branch, 16 1.38, 32 1.26 (:mod:`.members`), but a
change of one branch recompresses its block's text of the families it touched, twice
as much text with 32. A region of 5,000 branches has ~78 a class: 5 blocks of ~16.
"""

from __future__ import annotations

from typing import Final

from collector.exposition.members import EMPTY, BlockText
from collector.exposition.shards import MAX_SHARDS, BranchKey, Shard, branch_class

BLOCK_BRANCHES: Final = 16


class Block:
    """Up to :data:`BLOCK_BRANCHES` branches of one class, and their cached text.

    ``count`` is how many branches are in the block now; ``text`` is what the scrapes
    last compressed (its rows may still hold a branch forgotten since, or lack one
    placed since). Compared by identity."""

    __slots__ = ("cls", "count", "live", "text")

    def __init__(self, cls: int) -> None:
        self.cls = cls
        self.count = 0
        self.live = True  # False once dropped: its text is no longer served
        self.text: BlockText = EMPTY


class Blocks:
    """Every block, by class (in the order they were made), and each branch's block."""

    def __init__(self) -> None:
        self._classes: list[list[Block]] = [[] for _ in range(MAX_SHARDS)]
        self._of: dict[BranchKey, Block] = {}

    def of(self, key: BranchKey) -> Block | None:
        """The block of the branch ``key``; None for one not placed (or forgotten)."""
        return self._of.get(key)

    def place(self, key: BranchKey, hashed: int) -> Block:
        """The block of the branch ``key`` (whose branch_hash is ``hashed``), placed in
        the last block of its class with room if it has none."""
        block = self._of.get(key)
        if block is not None:
            return block
        blocks = self._classes[branch_class(hashed)]
        block = next((b for b in reversed(blocks) if b.count < BLOCK_BRANCHES), None)
        if block is None:
            block = Block(branch_class(hashed))
            blocks.append(block)
        block.count += 1
        self._of[key] = block
        return block

    def remove(self, key: BranchKey) -> Block | None:
        """Take the branch ``key`` out of its block (dropped once empty); the block."""
        block = self._of.pop(key, None)
        if block is not None:
            block.count -= 1
            if not block.count:
                block.live = False
                self._classes[block.cls].remove(block)
        return block

    def in_shard(self, shard: Shard) -> list[Block]:
        """The blocks of ``shard``, class by class."""
        classes = self._classes
        return [block for cls in shard.classes for block in classes[cls]]
