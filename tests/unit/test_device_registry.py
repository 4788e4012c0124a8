"""The registry of device kinds, option validation, and the sim kind stepped by hand."""

from __future__ import annotations

import pytest

from agent.devices.base import DeviceConfig
from agent.devices.frames import BadFrame, Emit, checked
from agent.devices.registry import DEVICE_KINDS, build_device, device_kind
from agent.devices.sim import SimDevice
from agent.devices.testing import RecordingContext
from agent.devices.transports import Backoff
from agent.errors import DeviceError
from branchwatch.contract import EVENT_TYPES


def test_every_protocol_is_registered() -> None:
    assert set(DEVICE_KINDS) == {"queue-line", "evaluator-frame", "intercom-line", "http", "sim"}


def test_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(DeviceError, match="known: evaluator-frame, http, intercom-line"):
        device_kind("modbus")


@pytest.mark.parametrize(
    ("protocol", "options"),
    [
        ("queue-line", {"colour": "red"}),
        ("queue-line", {"url": "modbus://x"}),
        ("queue-line", {"url": "tcp://nohost"}),
        ("queue-line", {"url": ""}),
        ("queue-line", {"reconnect_min": -1}),
        ("intercom-line", {"reconnect_max": "fast"}),
        ("http", {}),
        ("http", {"token_file": "/nonexistent/token"}),
        ("sim", {"branch": "Main Street"}),
        ("sim", {"seed": "x"}),
        ("sim", {"speed": 0}),
        ("sim", {"start_hour": 25}),
    ],
)
def test_bad_options_fail_at_build_time(protocol: str, options: dict[str, object]) -> None:
    options = dict(options)
    url = str(options.pop("url", "127.0.0.1:0"))
    config = DeviceConfig(id="d1", protocol=protocol, url=url, options=options)
    with pytest.raises(DeviceError):
        build_device(config, RecordingContext())


def test_every_kind_reports_a_contract_token() -> None:
    cases = [("queue-line", {}), ("evaluator-frame", {"counter": "c1"}), ("intercom-line", {})]
    kinds = {
        protocol: build_device(
            DeviceConfig(id="d1", protocol=protocol, url="loop://", options=options),
            RecordingContext(),
        ).kind
        for protocol, options in [*cases, ("sim", {})]
    }
    assert kinds == {
        "queue-line": "queue",
        "evaluator-frame": "evaluator",
        "intercom-line": "intercom",
        "sim": "sim",
    }


def test_checked_applies_the_contract() -> None:
    assert checked(Emit("position.staffed", {"position": 3})) == Emit(
        "position.staffed", {"position": 3}
    )
    result = checked(Emit("position.staffed", {"position": 300}))
    assert isinstance(result, BadFrame) and result.reason == "bad_value"


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
    with pytest.raises(DeviceError):
        Backoff(2.0, 1.0)


def test_sim_device_emits_the_model_events_through_its_context() -> None:
    now = [1_767_258_000.0]
    context = RecordingContext("sim-1")
    config = DeviceConfig(
        id="sim-1", protocol="sim", options={"branch": "b1", "seed": 7, "speed": 60.0}
    )
    device = SimDevice(config, context, clock=lambda: now[0])
    assert device.step() == 0
    now[0] += 120  # two simulated hours at 60×
    count = device.step()
    assert count == len(context.events) > 10
    assert "branch.opened" in context.types()
    assert all(event.type in EVENT_TYPES for event in context.events)
    assert all(event.ts is not None and event.ts <= now[0] for event in context.events)
    assert not {"v", "seq", "device", "type", "ts"} & set().union(
        *(e.fields for e in context.events)
    )
