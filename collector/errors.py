"""The one base exception of the ``collector`` package and the store's own errors."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error raised by the ``collector`` package."""


class SnapshotError(CollectorError):
    """A snapshot that cannot be restored: corrupt, from another format or floor layout."""
