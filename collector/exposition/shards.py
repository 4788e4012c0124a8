"""Scrape targets of one region: ``/metrics?shard=I&shards=N`` serves the branches of shard I.

A branch's shard is ``zlib.crc32(b"{region}/{branch}") % N``: the same on every
collector and across restarts, so both twins of an HA pair put a branch in the same
shard and a region split into N targets holds every branch exactly once.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from collector.errors import CollectorError

MAX_SHARDS: Final = 64
_DIGITS: Final = re.compile(r"[0-9]{1,6}")


class ShardError(CollectorError):
    """Shard parameters a scrape cannot be answered with (one line, for a 400)."""


def branch_hash(region: str, branch: str) -> int:
    """The stable number a branch's shard is taken from (the same on every collector)."""
    return zlib.crc32(f"{region}/{branch}".encode())


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``; ``ALL`` (0 of 1) is the whole region."""

    index: int
    count: int

    def holds(self, hashed: int) -> bool:
        """Whether the branch whose :func:`branch_hash` is ``hashed`` is in this shard."""
        return hashed % self.count == self.index

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
    ``shards`` is given, either is given twice or is not a whole number, or
    ``0 <= shard < shards <= 64`` does not hold.
    """
    params = parse_qs(query, keep_blank_values=True)
    given = params.get("shard"), params.get("shards")
    if given == (None, None):
        return ALL
    usage = f"give shard=I and shards=N with 0 <= I < N <= {MAX_SHARDS}, or neither"
    index, count = given
    if index is None or count is None:
        raise ShardError(f"only one of shard and shards: {usage}")
    if len(index) > 1 or len(count) > 1:
        raise ShardError(f"shard and shards may be given once each: {usage}")
    if not (_DIGITS.fullmatch(index[0]) and _DIGITS.fullmatch(count[0])):
        raise ShardError(f"shard and shards must be whole numbers: {usage}")
    shard = Shard(int(index[0]), int(count[0]))
    if not 1 <= shard.count <= MAX_SHARDS:
        raise ShardError(f"shards={shard.count} is out of range: {usage}")
    if shard.index >= shard.count:
        raise ShardError(f"shard={shard.index} is not below shards={shard.count}: {usage}")
    return shard
