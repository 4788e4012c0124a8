"""The histogram record shared by the floor state and the notice state.

A leaf module (imports nothing of the collector), so the notice state that
the branch state embeds can use it without an import cycle.
"""

from __future__ import annotations

import msgspec


class Histogram(msgspec.Struct, gc=False):
    """Non-cumulative counts per bucket; the last slot is the ``+Inf`` overflow."""

    counts: list[int]
    sum: float = 0.0
    count: int = 0
