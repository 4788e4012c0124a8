"""The one base exception of the ``collector`` package and the store's own errors."""

from __future__ import annotations

from branchwatch.errors import BranchwatchError, ConfigError


class CollectorError(BranchwatchError):
    """Base of every error raised by the ``collector`` package."""


class SnapshotError(CollectorError):
    """A snapshot that cannot be restored: corrupt, from another format or floor layout."""


class CollectorConfigError(CollectorError, ConfigError):
    """A collector setting or flag that cannot be used (exit status 2)."""
