"""The one base exception of the agent package."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error raised by the ``agent`` package."""


class DeviceError(AgentError):
    """A device could not be opened, configured or spoken to."""


class FrameError(AgentError):
    """Bytes from a device that do not form a valid frame (counted, never fatal)."""
