"""Reconnect delays: one exponential backoff for every link we keep open.

Devices, the agent's broker connection and the collector's all retry the same
way: ``first``, doubled after each failure, capped at ``cap``, optionally
spread by ``jitter`` so a fleet that lost its broker at the same moment does
not come back at the same moment.
"""

from __future__ import annotations

import random

from branchwatch.errors import ConfigError


class Backoff:
    """Exponential delays: ``first``, doubled each failure, capped at ``cap``."""

    __slots__ = ("_next", "cap", "first", "jitter")

    def __init__(self, first: float = 0.5, cap: float = 30.0, jitter: float = 0.0) -> None:
        if not 0 < first <= cap:
            raise ConfigError(f"reconnect delays: need 0 < first ({first}) <= cap ({cap})")
        if not 0 <= jitter < 1:
            raise ConfigError(f"reconnect jitter must be in [0, 1), got {jitter}")
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._next = first

    def peek(self) -> float:
        """The delay the next failure will wait (before jitter)."""
        return self._next

    def next(self) -> float:
        """The delay to wait now; the one after is twice as long (up to ``cap``)."""
        delay, self._next = self._next, min(self._next * 2, self.cap)
        if self.jitter:
            delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return delay

    def reset(self) -> None:
        """The link worked: the next failure starts over at ``first``."""
        self._next = self.first
