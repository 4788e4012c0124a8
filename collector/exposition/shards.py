"""Scrape targets of one region: ``/metrics?shard=I&shards=N`` serves the branches of shard I.

A branch's shard is ``zlib.crc32(b"{region}/{branch}") % N``: the same on every
collector and across restarts, so both twins of an HA pair put a branch in the same
shard and a region split into N targets holds every branch exactly once.

N is a divisor of :data:`MAX_SHARDS` (1, 2, 4, … 64): the cache compresses branches
together in blocks of one class (``crc32 % 64``, :func:`branch_class`), and a class lies
in exactly one shard of every such N (``crc32 % N == class % N``), so a shard is served
as whole blocks.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from collector.errors import CollectorError

BranchKey = tuple[str, str]  # (region, branch)

MAX_SHARDS: Final = 64
# The shard counts a scrape may ask for: those whose shards are unions of classes.
SHARD_COUNTS: Final = tuple(n for n in range(1, MAX_SHARDS + 1) if MAX_SHARDS % n == 0)
_COUNTS_TEXT: Final = ", ".join(map(str, SHARD_COUNTS))
_DIGITS: Final = re.compile(r"[0-9]{1,6}")


class ShardError(CollectorError):
    """Shard parameters a scrape cannot be answered with (one line, for a 400)."""


def branch_hash(region: str, branch: str) -> int:
    """The stable number a branch's shard is taken from (the same on every collector)."""
    return zlib.crc32(f"{region}/{branch}".encode())


def branch_class(hashed: int) -> int:
    """The class (of :data:`MAX_SHARDS`) of the branch whose :func:`branch_hash` is
    ``hashed``: the branches the cache may compress together."""
    return hashed % MAX_SHARDS


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``; ``ALL`` (0 of 1) is the whole region."""

    index: int
    count: int

    def __post_init__(self) -> None:
        # A count that does not divide 64 would cut through the cache's blocks.
        if self.count not in SHARD_COUNTS or not 0 <= self.index < self.count:
            raise ValueError(f"no shard {self.index} of {self.count} (see parse_shard)")

    def holds(self, hashed: int) -> bool:
        """Whether the branch whose :func:`branch_hash` (or :func:`branch_class`) is
        ``hashed`` is in this shard."""
        return hashed % self.count == self.index

    @property
    def classes(self) -> range:
        """The branch classes this shard is made of."""
        return range(self.index, MAX_SHARDS, self.count)

    @property
    def carries_collector(self) -> bool:
        """The collector's own metrics go with shard 0 only: a sum over targets counts
        them once."""
        return self.index == 0


ALL: Final = Shard(0, 1)


def shard_of(region: str, branch: str, count: int) -> int:
    """The shard (of ``count``) a branch is served in."""
    return branch_hash(region, branch) % count


def parse_shard(query: str) -> Shard:
    """The shard a ``/metrics`` query string asks for: :data:`ALL` without parameters.

    Raises :class:`ShardError` (a one-line message) when only one of ``shard`` and
    ``shards`` is given, either is given twice or is not a whole number, ``shards`` is
    not one of :data:`SHARD_COUNTS`, or ``shard`` is not below it.
    """
    params = parse_qs(query, keep_blank_values=True)
    given = params.get("shard"), params.get("shards")
    if given == (None, None):
        return ALL
    usage = f"give shard=I and shards=N with N one of {_COUNTS_TEXT} and 0 <= I < N, or neither"
    index, count = given
    if index is None or count is None:
        raise ShardError(f"only one of shard and shards: {usage}")
    if len(index) > 1 or len(count) > 1:
        raise ShardError(f"shard and shards may be given once each: {usage}")
    if not (_DIGITS.fullmatch(index[0]) and _DIGITS.fullmatch(count[0])):
        raise ShardError(f"shard and shards must be whole numbers: {usage}")
    shard, shards = int(index[0]), int(count[0])
    if shards not in SHARD_COUNTS:
        raise ShardError(f"shards={shards} is not a divisor of {MAX_SHARDS}: {usage}")
    if shard >= shards:
        raise ShardError(f"shard={shard} is not below shards={shards}: {usage}")
    return Shard(shard, shards)
