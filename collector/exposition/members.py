"""The exposition kept as gzip members, a member per (block of branches, family).

A block's text of one family (the family's lines of each branch of the block, one after
another) is compressed into one gzip member. RFC 1952 allows a stream of members one
after another, and Go's gzip reader in Prometheus reads them as one body, so a scrape
that accepts gzip is sent the cached members as they are, in any order and any
selection of blocks. One that does not gets the text back, member by member.

Why blocks (:mod:`.blocks`: up to 16 branches of one shard class), measured on 256
simulated branches two hours into their day (26.2 KiB of text a branch, level 6): a
member per (branch, family) held 4.25 KiB a branch in ~28 tiny members (each with its
18 bytes of gzip header and trailer, a fresh deflate dictionary and a ``bytes``
object's 33); a member per (block of 16, family) holds 1.38 KiB in ~1.8 members, and
compressing it costs 295 us a branch where single fragments cost 461.

Level 3, not zlib's default 6: a block's member is big enough for the level to count
(blocks of 16, every family, the same branches: level 1 makes 1.70 KiB a branch in
90 us, 3 1.59 in 113 us, 6 1.38 in 279 us), and a changed family recompresses its whole
block. With live churn (2,000 branches, 1,200 events between scrapes: a region's 200
msg/s over 15 s), a scrape of every shard took 0.42 s of CPU at level 6 and 0.28 s at 3,
for 0.2 KiB more a branch.

A block keeps, for each (branch, family), its text's length (to cut a family's text
apart again: a branch that changed is spliced in among its mates' text, decompressed
from the old member) and ``hash()`` (a family keeps its member while every branch's
text of it is unchanged: an event touches a few families; the agent's last-seen time
is in every re-render).
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, NamedTuple

from collector.exposition.render import HEADERS
from collector.exposition.shards import BranchKey

GZIP_LEVEL: Final = 3
GZIP_WBITS: Final = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate data
FAMILIES: Final = len(HEADERS)  # a branch's text is one fragment per family

Fragments = tuple[bytes, ...]  # one branch's text: a fragment per family (catalog order)


def member(text: bytes) -> bytes:
    """``text`` as one gzip member; no member (``b""``) for no text."""
    return zlib.compress(text, GZIP_LEVEL, GZIP_WBITS) if text else b""


def texts(members: Iterable[bytes]) -> Iterator[bytes]:
    """The text of each member (an identity answer, tests); empty ones skipped."""
    for one in members:
        if one:
            yield zlib.decompress(one, GZIP_WBITS)


class BlockText(NamedTuple):
    """A block's exposition as cached: its rows (branches, in the order their text is in
    each member), a gzip member per family (catalog order, ``b""`` for no text)."""

    rows: tuple[BranchKey, ...]
    members: tuple[bytes, ...]
    lengths: array[int]  # "I": each (row, family) text's length, row by row
    digests: array[int]  # "q": hash() of each (row, family) text, row by row
    text_length: int  # of the text the members hold (an identity answer's length)


EMPTY: Final = BlockText((), (b"",) * FAMILIES, array("I"), array("q"), 0)


def rebuild(
    old: BlockText, rows: Sequence[BranchKey], fresh: Mapping[BranchKey, Fragments]
) -> BlockText:
    """The block holding ``rows`` (in order): the text of those in ``fresh`` as given,
    the others' as ``old`` holds it. Only the families whose text changed are
    compressed again; a mate's text of one is cut out of ``old``'s member."""
    rows = tuple(rows)
    lengths, digests = array("I"), array("q")
    where = {key: i for i, key in enumerate(old.rows)}
    for key in rows:
        text = fresh.get(key)
        if text is not None:
            lengths.extend(map(len, text))
            digests.extend(map(hash, text))
        else:
            start = where[key] * FAMILIES
            lengths.extend(old.lengths[start : start + FAMILIES])
            digests.extend(old.digests[start : start + FAMILIES])
    new = BlockText(rows, (), lengths, digests, sum(lengths))
    if rows == old.rows:
        fresh_rows = [i for i, key in enumerate(rows) if key in fresh]
        changed = [_changed_in(old, new, fresh_rows, family) for family in range(FAMILIES)]
    else:
        changed = [_column(old, f) != _column(new, f) for f in range(FAMILIES)]
    members = tuple(
        member(_family_text(old, new, fresh, family)) if changed[family] else old.members[family]
        for family in range(FAMILIES)
    )
    return new._replace(members=members)


def _changed_in(old: BlockText, new: BlockText, fresh_rows: list[int], family: int) -> bool:
    """Whether a fresh row's text of ``family`` differs (the rows are the same)."""
    return any(
        new.digests[i * FAMILIES + family] != old.digests[i * FAMILIES + family] for i in fresh_rows
    )


def _column(block: BlockText, family: int) -> list[tuple[BranchKey, int]]:
    """What ``family``'s text of the block is made of: each row with text, its digest."""
    return [
        (key, block.digests[i * FAMILIES + family])
        for i, key in enumerate(block.rows)
        if block.lengths[i * FAMILIES + family]
    ]


def _family_text(
    old: BlockText, new: BlockText, fresh: Mapping[BranchKey, Fragments], family: int
) -> bytes:
    """``new``'s text of ``family``: the fresh rows' own, the others' cut out of ``old``'s
    member (decompressed only when a row needs it)."""
    pieces: list[bytes] = []
    cut: dict[BranchKey, bytes] | None = None
    for i, key in enumerate(new.rows):
        if not new.lengths[i * FAMILIES + family]:
            continue
        text = fresh.get(key)
        if text is not None:
            pieces.append(text[family])
            continue
        if cut is None:
            cut = _cut(old, family)
        pieces.append(cut[key])
    return b"".join(pieces)


def _cut(block: BlockText, family: int) -> dict[BranchKey, bytes]:
    """``family``'s text of each row of ``block``, out of its member."""
    whole = zlib.decompress(block.members[family], GZIP_WBITS) if block.members[family] else b""
    pieces: dict[BranchKey, bytes] = {}
    start = 0
    for i, key in enumerate(block.rows):
        end = start + block.lengths[i * FAMILIES + family]
        pieces[key] = whole[start:end]
        start = end
    return pieces


HEADER_MEMBERS: Final = tuple(map(member, HEADERS))
HEADERS_LENGTH: Final = sum(map(len, HEADERS))
