"""Device kinds by protocol name (DESIGN §10: a dict, never an if/elif chain).

Adding a protocol = one codec module, one adapter, one line here
(docs/add-a-device-protocol.md).
"""

from __future__ import annotations

from typing import Final

from agent.devices.base import Device, DeviceConfig, DeviceContext, DeviceKind
from agent.devices.evaluator import EvaluatorDevice
from agent.devices.http import HttpDevice
from agent.devices.intercom_line import IntercomDevice
from agent.devices.queue_line import QueueLineDevice
from agent.devices.sim import SimDevice
from agent.errors import DeviceError

DEVICE_KINDS: Final[dict[str, DeviceKind]] = {
    "queue-line": QueueLineDevice,
    "evaluator-frame": EvaluatorDevice,
    "intercom-line": IntercomDevice,
    "http": HttpDevice,
    "sim": SimDevice,
}


def device_kind(protocol: str) -> DeviceKind:
    """The kind registered for ``protocol``; DeviceError listing the known ones."""
    try:
        return DEVICE_KINDS[protocol]
    except KeyError:
        known = ", ".join(sorted(DEVICE_KINDS))
        raise DeviceError(f"unknown device protocol {protocol!r} (known: {known})") from None


def build_device(config: DeviceConfig, context: DeviceContext) -> Device:
    """Validate ``config.options`` and build the running adapter (DeviceError when wrong)."""
    return device_kind(config.protocol)(config, context)
