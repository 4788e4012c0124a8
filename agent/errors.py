"""The one base exception of the agent package."""

from __future__ import annotations

from branchwatch.errors import BranchwatchError, ConfigError


class AgentError(BranchwatchError):
    """Base of every error raised by the ``agent`` package."""


class DeviceError(AgentError):
    """A device could not be opened, configured or spoken to."""


class DeviceConfigError(DeviceError, ConfigError):
    """A device section of the agent's config that cannot be used (exit status 2)."""


class FrameError(AgentError):
    """Bytes from a device that do not form a valid frame (counted, never fatal)."""
