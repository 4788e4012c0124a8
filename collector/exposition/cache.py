"""The floor exposition's cache: every branch's gzip members, re-rendered only when dirty,
and the ordered member list of each shard asked for.

Concurrency. The store's data (branches, and this cache's own state: dirty set,
fragments, lists) change under the runtime's lock, which ingest holds for every
message. A scrape must not hold it for a whole region (at 2,000 msg/s every branch is
dirty at every scrape), so :meth:`Exposition.chunks` takes it per branch: under the
lock it renders one dirty branch's text (and marks it clean), outside it compresses
that text, then, under the lock again, keeps the members unless the branch was
forgotten meanwhile. A branch dirtied again while it was compressed stays dirty and is
rendered at the next scrape; one forgotten meanwhile is not brought back. Scrapes run
one at a time through the cache's own render lock (HA Prometheus pairs and the shard
targets of one Prometheus come in parallel); ingest never waits for that lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, NamedTuple

from collector.exposition.members import (
    HEADER_MEMBERS,
    HEADERS_LENGTH,
    Fragments,
    compress,
    texts,
)
from collector.exposition.render import render_branch
from collector.exposition.shards import ALL, Shard, branch_hash
from collector.exposition.text import Labels
from collector.floor.branch import BranchState
from collector.floor.config import FloorRules
from collector.notices.state import IGNORED_ACK_REASONS

BranchKey = tuple[str, str]
Lock = AbstractContextManager[Any]  # the runtime's lock around the store
NO_LOCK: Final = nullcontext()  # a store used by one thread (tests, tools)


class ShardChunks(NamedTuple):
    """A shard's floor exposition: gzip members in order (headers, then each family's
    fragments of the shard's branches, sorted), none of them empty."""

    members: list[bytes]
    gzip_length: int  # the members' bytes: the length of a gzip answer
    text_length: int  # the text they hold: the length of an identity answer


class _Render(NamedTuple):
    """A branch rendered under the lock, compressed outside it, to be kept."""

    key: BranchKey
    branch: BranchState
    fragments: Fragments


class Exposition:
    """Per-branch, per-family gzip member cache; re-renders only dirty branches.

    ``notices``: the collector sends floor notices, so every branch renders the
    notice families (off: they are declared but have no series).
    """

    def __init__(self, rules: FloorRules, *, notices: bool = False) -> None:
        self._labels = Labels(rules, notices)
        self._fragments: dict[BranchKey, Fragments] = {}
        self._dirty: set[BranchKey] = set()
        self._order: list[BranchKey] | None = []
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
        gone = self._fragments.pop(key, None)
        if gone is not None:
            self._order = None
            self._invalidate(gone.hashed)

    def _invalidate(self, hashed: int) -> None:
        """Drop the member lists of every shard that holds the branch hashed ``hashed``."""
        for shard in [shard for shard in self._lists if shard.holds(hashed)]:
            del self._lists[shard]

    def _add_acks(self, key: BranchKey, ignored: Mapping[str, int]) -> None:
        """Add what a branch's ignored-ack counts grew by since it was last rendered.

        A branch restored from a snapshot adds its whole count at its first render, so
        the sum carries over a restart as the branch counts do.
        """
        if not ignored:
            return
        seen = self._acks_seen.setdefault(key, {})
        total = self.acks_ignored
        for reason, count in ignored.items():
            grown = count - seen.get(reason, 0)
            if grown > 0 and reason in total:
                total[reason] += grown
            seen[reason] = count

    def fragments(self, key: BranchKey) -> Fragments | None:
        """The cached members of one branch (as of the last render)."""
        return self._fragments.get(key)

    def render(self, branches: Mapping[BranchKey, BranchState]) -> bytes:
        """The whole exposition as text (tests, small stores)."""
        return b"".join(texts(self.chunks(branches).members))

    def chunks(
        self, branches: Mapping[BranchKey, BranchState], shard: Shard = ALL, lock: Lock = NO_LOCK
    ) -> ShardChunks:
        """``shard``'s exposition: its dirty branches rendered first, then its member list
        (cached until one of its branches changes). ``branches`` is read only under
        ``lock``. Callers must not modify the list."""
        with self._render_lock:
            self._render_dirty(branches, shard, lock)
            with lock:
                cached = self._lists.get(shard)
                if cached is not None:
                    return cached
                if self._order is None:
                    self._order = sorted(self._fragments)
                fragments = self._fragments
                picked = [fragments[key] for key in self._order]
                if shard != ALL:
                    picked = [f for f in picked if shard.holds(f.hashed)]
                self._lists[shard] = None  # a change until it is built drops it
            built = _assemble(picked)
            with lock:
                if shard in self._lists:
                    self._lists[shard] = built
            return built

    def _render_dirty(
        self, branches: Mapping[BranchKey, BranchState], shard: Shard, lock: Lock
    ) -> None:
        """Render and compress the dirty branches of ``shard``, one branch per hold of
        ``lock``; each one's members are kept in the next hold."""
        with lock:
            dirty = list(self._dirty)
        if shard != ALL:
            dirty = [key for key in dirty if shard.holds(branch_hash(*key))]
        done: _Render | None = None
        for key in dirty:
            with lock:
                if done is not None:
                    self._keep(done, branches)
                    done = None
                branch = branches.get(key)
                if branch is None or key not in self._dirty:
                    continue  # forgotten, or rendered by the time we got here
                self._dirty.discard(key)
                text = render_branch(self._labels, branch)
                self._add_acks(key, branch.notices.ignored_acks)
                previous = self._fragments.get(key)
            hashed = branch_hash(*key) if previous is None else previous.hashed
            done = _Render(key, branch, compress(text, hashed, previous))
        if done is not None:
            with lock:
                self._keep(done, branches)

    def _keep(self, done: _Render, branches: Mapping[BranchKey, BranchState]) -> None:
        """Cache a rendered branch, unless it was forgotten while it was compressed (one
        forgotten and back since is another state, dirty again)."""
        if branches.get(done.key) is not done.branch:
            return
        if done.key not in self._fragments:
            self._order = None
        self._fragments[done.key] = done.fragments
        self._invalidate(done.fragments.hashed)


def _assemble(picked: list[Fragments]) -> ShardChunks:
    """The member list of the branches ``picked`` (in order): each family's header, then
    its fragments of every branch."""
    if not picked:
        members = list(HEADER_MEMBERS)
    else:
        members = []
        columns = zip(*(f.members for f in picked), strict=True)
        for header, column in zip(HEADER_MEMBERS, columns, strict=True):
            members.append(header)
            members.extend(filter(None, column))
    text_length = HEADERS_LENGTH + sum(f.text_length for f in picked)
    return ShardChunks(members, sum(map(len, members)), text_length)
