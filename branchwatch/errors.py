"""The one root of every branchwatch error, and the kinds the command line maps to exit codes.

Each package (``agent``, ``collector``, ``dashboards``, ...) derives its own base
from :class:`BranchwatchError`; an error that is also a :class:`ConfigError`
means "the configuration or a flag is wrong" (exit status 2, do not restart),
any other one "it failed while running" (exit status 1).
"""

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
