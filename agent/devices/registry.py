"""Device kinds by protocol name: a table, never an if/elif chain.

Adding a protocol = one codec module, one adapter, one line here
(docs/add-a-device-protocol.md). The table is read-only: the agent hands it
to the core (``agent.app``), and a test or a site build passes its own
mapping instead of changing this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from agent.devices.base import Device, DeviceConfig, DeviceContext, DeviceKind, kind_for
from agent.devices.evaluator import EvaluatorDevice
from agent.devices.http import HttpDevice
from agent.devices.intercom_line import IntercomDevice
from agent.devices.queue_line import QueueLineDevice
from agent.devices.sim import SimDevice

DEVICE_KINDS: Final[Mapping[str, DeviceKind]] = MappingProxyType({
    "queue-line": QueueLineDevice,
    "evaluator-frame": EvaluatorDevice,
    "intercom-line": IntercomDevice,
    "http": HttpDevice,
    "sim": SimDevice,
})  # fmt: skip


def build_device(
    config: DeviceConfig, context: DeviceContext, kinds: Mapping[str, DeviceKind] = DEVICE_KINDS
) -> Device:
    """Validate ``config.options`` and build the running adapter (DeviceConfigError when wrong)."""
    return kind_for(config, kinds)(config, context)
