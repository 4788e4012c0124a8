"""The floor exposition's cache: gzip members by block of branches (:mod:`.blocks`),
rebuilt only where a branch is dirty, and the ordered member list of each shard asked for.

Concurrency. The store's data (branches, and this cache's own state: dirty set, blocks,
lists) change under the runtime's lock, which ingest holds for every message. A scrape
must not hold it for a whole region (at 2,000 msg/s every branch is dirty at every
scrape), so :meth:`Exposition.chunks` takes it per branch and per block: under the lock
it renders one dirty branch's text (and marks it clean); once a block's dirty branches
are rendered it notes, under the lock, which branches the block holds now; outside the
lock it compresses the block's changed families; and under the lock again it keeps the
block's new text. A branch dirtied again while its block was compressed stays dirty and
is rendered at the next scrape. A branch forgotten meanwhile is not brought back: its
block is rebuilt without it before the scrape's list is made (a block whose last branch
goes is dropped at once). Scrapes run one at a time through the cache's own render lock
(HA Prometheus pairs and the shard targets of one Prometheus come in parallel); ingest
never waits for that lock. The blocks' text is written only by the scrape holding it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, NamedTuple

from collector.exposition.blocks import Block, Blocks
from collector.exposition.members import (
    HEADER_MEMBERS,
    HEADERS_LENGTH,
    BlockText,
    Fragments,
    rebuild,
    texts,
)
from collector.exposition.render import render_branch
from collector.exposition.shards import ALL, BranchKey, Shard, branch_hash
from collector.exposition.text import Labels
from collector.floor.branch import BranchState
from collector.floor.config import FloorRules
from collector.notices.state import IGNORED_ACK_REASONS

Lock = AbstractContextManager[Any]  # the runtime's lock around the store
NO_LOCK: Final = nullcontext()  # a store used by one thread (tests, tools)
# How many times a scrape rebuilds the blocks a branch was forgotten from while they were
# compressed; forgotten again and again beyond that, one may show in this scrape's answer.
STALE_PASSES: Final = 3


class ShardChunks(NamedTuple):
    """A shard's floor exposition: gzip members in order (headers, then each family's
    members of the shard's blocks), none of them empty."""

    members: list[bytes]
    gzip_length: int  # the members' bytes: the length of a gzip answer
    text_length: int  # the text they hold: the length of an identity answer


class _Built(NamedTuple):
    """A block's text compressed outside the lock, to be kept: with the branch each
    rendered row was rendered from."""

    block: Block
    rendered: list[tuple[BranchKey, BranchState]]
    text: BlockText


class Exposition:
    """Gzip members by (block of branches, family); re-renders only dirty branches and
    recompresses only the families whose text changed.

    ``notices``: the collector sends floor notices, so every branch renders the
    notice families (off: they are declared but have no series).
    """

    def __init__(self, rules: FloorRules, *, notices: bool = False) -> None:
        self._labels = Labels(rules, notices)
        self._blocks = Blocks()
        self._dirty: set[BranchKey] = set()
        # Blocks whose text holds a branch forgotten since: rebuilt before their next list.
        self._stale: set[Block] = set()
        # The member list of each shard asked for; None while it is being built.
        self._lists: dict[Shard, ShardChunks | None] = {}
        self._render_lock = threading.Lock()
        # Intercom acks the notice engine ignored, summed over the branches as rendered
        # (the collector exports the sum: per branch they would cost the series budget).
        # Every reason is present, so a reader on another thread never sees it resize.
        self.acks_ignored: dict[str, int] = dict.fromkeys(IGNORED_ACK_REASONS, 0)
        self._acks_seen: dict[BranchKey, dict[str, int]] = {}

    def mark_dirty(self, key: BranchKey) -> None:
        self._dirty.add(key)

    def forget(self, key: BranchKey) -> None:
        """The branch is gone: its lines disappear from the next render."""
        self._dirty.discard(key)
        self._acks_seen.pop(key, None)  # its acks stay in the sum: a counter never falls
        block = self._blocks.remove(key)
        if block is None:
            return
        if not block.live:  # it was the block's last branch: the block is dropped
            self._stale.discard(block)
            if block.text.rows:
                self._invalidate(block.cls)
        elif key in block.text.rows:
            self._stale.add(block)
            self._invalidate(block.cls)

    def _invalidate(self, cls: int) -> None:
        """Drop the member lists of every shard that holds the branch class ``cls``."""
        for shard in [shard for shard in self._lists if shard.holds(cls)]:
            del self._lists[shard]

    def _add_acks(self, key: BranchKey, ignored: Mapping[str, int]) -> None:
        """Add what a branch's ignored-ack counts grew by since it was last rendered.

        A branch restored from a snapshot adds its whole count at its first render, so
        the sum carries over a restart as the branch counts do.
        """
        seen = self._acks_seen.get(key)
        if seen is None:
            if not any(ignored.values()):
                return  # none yet: no dict (~100 bytes) for every branch
            seen = self._acks_seen[key] = {}
        total = self.acks_ignored
        for reason, count in ignored.items():
            grown = count - seen.get(reason, 0)
            if grown > 0 and reason in total:
                total[reason] += grown
            seen[reason] = count

    def block(self, key: BranchKey) -> Block | None:
        """The block of one branch (its text as of the last render); None for a branch
        not rendered yet or forgotten."""
        block = self._blocks.of(key)
        return block if block is not None and key in block.text.rows else None

    def render(self, branches: Mapping[BranchKey, BranchState]) -> bytes:
        """The whole exposition as text (tests, small stores)."""
        return b"".join(texts(self.chunks(branches).members))

    def chunks(
        self, branches: Mapping[BranchKey, BranchState], shard: Shard = ALL, lock: Lock = NO_LOCK
    ) -> ShardChunks:
        """``shard``'s exposition: its dirty branches rendered first, then its member list
        (cached until one of its blocks changes). ``branches`` is read only under
        ``lock``. Callers must not modify the list."""
        with self._render_lock:
            self._render_dirty(branches, shard, lock)
            with lock:
                cached = self._lists.get(shard)
                if cached is not None:
                    return cached
                picked = [block.text for block in self._blocks.in_shard(shard)]
                self._lists[shard] = None  # a change until it is built drops it
            built = _assemble(picked)
            with lock:
                if shard in self._lists:
                    self._lists[shard] = built
            return built

    def _render_dirty(
        self, branches: Mapping[BranchKey, BranchState], shard: Shard, lock: Lock
    ) -> None:
        """Render the dirty branches of ``shard`` (one per hold of ``lock``) and rebuild
        their blocks, and the blocks a branch was forgotten from; each block's text is
        kept in the next hold."""
        with lock:
            dirty = list(self._dirty)
        hashed = [(key, branch_hash(*key)) for key in dirty]  # crc32: not under the lock
        if shard != ALL:
            hashed = [(key, h) for key, h in hashed if shard.holds(h)]
        with lock:
            work = self._stale_work(shard)
            for key, h in hashed:
                if key in self._dirty and key in branches:
                    work.setdefault(self._blocks.place(key, h), []).append(key)
        done: _Built | None = None
        for _ in range(STALE_PASSES + 1):
            for block, keys in work.items():
                done = self._rebuild(block, keys, branches, lock, done)
            with lock:
                if done is not None:
                    self._keep(done, branches)
                    done = None
                work = self._stale_work(shard)
            if not work:
                return

    def _stale_work(self, shard: Shard) -> dict[Block, list[BranchKey]]:
        return {block: [] for block in self._stale if shard.holds(block.cls)}

    def _rebuild(
        self,
        block: Block,
        keys: list[BranchKey],
        branches: Mapping[BranchKey, BranchState],
        lock: Lock,
        done: _Built | None,
    ) -> _Built | None:
        """Render ``keys`` of ``block`` and compress the block's new text; ``done`` (the
        block before) is kept in the first hold of the lock."""
        fresh: dict[BranchKey, Fragments] = {}
        rendered: list[tuple[BranchKey, BranchState]] = []
        for key in keys:
            with lock:
                if done is not None:
                    self._keep(done, branches)
                    done = None
                branch = branches.get(key)
                if branch is None or key not in self._dirty or self._blocks.of(key) is not block:
                    continue  # forgotten, or rendered by the time we got here
                self._dirty.discard(key)
                fresh[key] = render_branch(self._labels, branch)
                self._add_acks(key, branch.notices.ignored_acks)
            rendered.append((key, branch))
        with lock:
            if done is not None:
                self._keep(done, branches)
            if not block.live:
                return None
            old = block.text
            rows = [key for key in old.rows if self._blocks.of(key) is block]
            held = set(rows)
            rows += [key for key in fresh if key not in held and self._blocks.of(key) is block]
            if not fresh and rows == list(old.rows):
                self._stale.discard(block)  # every branch of its text is still in it
                return None
        return _Built(block, rendered, rebuild(old, rows, fresh))

    def _keep(self, done: _Built, branches: Mapping[BranchKey, BranchState]) -> None:
        """Cache a block's new text. A branch of it forgotten while it was compressed (or
        forgotten and back since: another state, dirty again) leaves the block stale, to
        be rebuilt without it before a list of its shard is made."""
        block, old, new = done.block, done.block.text, done.text
        if not block.live:
            return
        held = self._blocks.of
        if any(held(key) is not block for key in new.rows) or any(
            branches.get(key) is not branch for key, branch in done.rendered if key in new.rows
        ):
            self._stale.add(block)
        else:
            self._stale.discard(block)
        if new.rows == old.rows and all(
            a is b for a, b in zip(new.members, old.members, strict=True)
        ):
            return  # the same text: the lists that hold it stand
        block.text = new
        self._invalidate(block.cls)


def _assemble(picked: list[BlockText]) -> ShardChunks:
    """The member list of the blocks ``picked`` (in order): each family's header, then
    its members of every block."""
    if not picked:
        members = list(HEADER_MEMBERS)
    else:
        members = []
        columns = zip(*(text.members for text in picked), strict=True)
        for header, column in zip(HEADER_MEMBERS, columns, strict=True):
            members.append(header)
            members.extend(filter(None, column))
    text_length = HEADERS_LENGTH + sum(text.text_length for text in picked)
    return ShardChunks(members, sum(map(len, members)), text_length)
