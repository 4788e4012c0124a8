"""The one base exception of the shared package and its specialisations."""

from __future__ import annotations


class BranchwatchError(Exception):
    """Base of every error raised by the ``branchwatch`` package."""


class ContractError(BranchwatchError):
    """A message, topic or identifier that breaks the wire contract.

    ``reason`` is machine-readable (it becomes the ``reason`` label of
    ``branchwatch_collector_rejected_total``); ``detail`` is for humans.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConfigError(BranchwatchError):
    """A configuration file or command-line value that cannot be used."""
