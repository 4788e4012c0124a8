"""Prometheus text exposition (format 0.0.4) of the floor metrics.

Each branch's lines are rendered once per change into one fragment per metric family
(:mod:`.render`, with the families' renderers in :mod:`.floor` and :mod:`.agents`).
Branches are grouped in blocks of one shard class (:mod:`.blocks`, :mod:`.shards`), and
each family's text of a block is kept as one gzip member (:mod:`.members`), cached
(:mod:`.cache`). A scrape joins the cached members family by family (``# HELP``/``# TYPE``
once each, from the metric catalog :mod:`branchwatch.contract.metrics`, families in its
order), of every block or of one shard's, and re-renders only the branches marked dirty
since.
"""

from collector.exposition.blocks import BLOCK_BRANCHES, Block
from collector.exposition.cache import NO_LOCK, Exposition, Lock, ShardChunks
from collector.exposition.members import Fragments, member, texts
from collector.exposition.shards import (
    ALL,
    MAX_SHARDS,
    SHARD_COUNTS,
    BranchKey,
    Shard,
    ShardError,
    parse_shard,
    shard_of,
)

__all__ = [
    "ALL",
    "BLOCK_BRANCHES",
    "MAX_SHARDS",
    "NO_LOCK",
    "SHARD_COUNTS",
    "Block",
    "BranchKey",
    "Exposition",
    "Fragments",
    "Lock",
    "Shard",
    "ShardChunks",
    "ShardError",
    "member",
    "parse_shard",
    "shard_of",
    "texts",
]
