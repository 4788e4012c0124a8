"""Device kinds available to this agent: the adapters' registry plus local additions.

The registry (:mod:`agent.devices.registry`) is owned by the device adapters;
this module only looks names up in it, so the core never branches on a
protocol name. :func:`register` adds a kind at run time (tests, site plugins).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from agent.devices.base import DeviceKind

_EXTRA: dict[str, DeviceKind] = {}
REGISTRY_MODULE = "agent.devices.registry"


def register(name: str, kind: DeviceKind) -> None:
    """Make ``name`` usable as a ``[[devices]] protocol`` in this process."""
    _EXTRA[name] = kind


def device_kinds() -> Mapping[str, DeviceKind]:
    try:
        module = importlib.import_module(REGISTRY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != REGISTRY_MODULE:
            raise  # a bug inside the registry must not look like "no registry"
        registry: Mapping[str, DeviceKind] = {}
    else:
        registry = getattr(module, "DEVICE_KINDS", {})
    return {**registry, **_EXTRA}


def lookup(name: str) -> DeviceKind | None:
    return device_kinds().get(name)
