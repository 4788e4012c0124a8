"""Prometheus text exposition (format 0.0.4) of the floor metrics.

Each branch's lines are rendered once per change into one fragment per metric family
(:mod:`.render`, with the families' renderers in :mod:`.floor` and :mod:`.agents`),
kept as gzip members (:mod:`.members`) and cached (:mod:`.cache`). A scrape joins the
cached members family by family (``# HELP``/``# TYPE`` once each, from the metric
catalog :mod:`branchwatch.contract.metrics`, families in its order), of every branch or
of one shard's (:mod:`.shards`), and re-renders only the branches marked dirty since.
"""

from collector.exposition.cache import NO_LOCK, BranchKey, Exposition, Lock, ShardChunks
from collector.exposition.members import Fragments, member, texts
from collector.exposition.shards import ALL, MAX_SHARDS, Shard, ShardError, parse_shard, shard_of

__all__ = [
    "ALL",
    "MAX_SHARDS",
    "NO_LOCK",
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
