"""The registry of device kinds, option validation, and the sim kind stepped by hand."""

from __future__ import annotations

import pytest

from agent.devices.base import UNSTAMPED, DeviceConfig
from agent.devices.frames import BadFrame, to_event
from agent.devices.registry import DEVICE_KINDS, build_device
from agent.devices.sim import SimDevice
from agent.devices.stream import reconnect_backoff
from agent.devices.testing import RecordingContext
from agent.errors import DeviceConfigError, DeviceError
from branchwatch.contract import EVENT_TYPES, decode_events, encode
from branchwatch.contract.events import PositionStaffed

T = 1_764_053_400.0


def test_every_protocol_is_registered() -> None:
    assert set(DEVICE_KINDS) == {"queue-line", "evaluator-frame", "intercom-line", "http", "sim"}


def test_unknown_protocol_names_the_known_ones() -> None:
    config = DeviceConfig(id="d1", protocol="modbus")
    with pytest.raises(DeviceConfigError, match="d1: unknown device protocol 'modbus'") as info:
        build_device(config, RecordingContext())
    assert "known: evaluator-frame, http, intercom-line, queue-line, sim" in str(info.value)
    with pytest.raises(DeviceConfigError, match=r"\(known: none\)"):
        build_device(config, RecordingContext(), kinds={})


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


def test_to_event_applies_the_contract_once() -> None:
    assert to_event(PositionStaffed, T, {"position": 3}) == PositionStaffed(
        **UNSTAMPED, ts=T, position=3
    )
    refused = to_event(PositionStaffed, T, {"position": 300})
    assert isinstance(refused, BadFrame) and refused.reason == "bad_args"
    assert "position" in refused.detail
    # The header is the core's: a field cannot smuggle in its own seq or device.
    stamped = to_event(PositionStaffed, T, {"position": 3, "seq": 7, "device": "x"})
    assert isinstance(stamped, PositionStaffed) and (stamped.seq, stamped.device) == (
        0,
        "unstamped",
    )


def test_reconnect_backoff_comes_from_the_options() -> None:
    config = DeviceConfig(id="q1", protocol="queue-line", url="loop://",
                          options={"reconnect_min": 0.5, "reconnect_max": 3.0})  # fmt: skip
    backoff = reconnect_backoff(config)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
    # A cap below the first delay is raised to it, not an error.
    low = DeviceConfig(
        id="q1", protocol="queue-line", options={"reconnect_min": 2, "reconnect_max": 1}
    )
    assert [reconnect_backoff(low).next() for _ in range(2)] == [2.0, 2.0]


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
    assert all(event.ts <= now[0] for event in context.events)
    # The model's own structs, handed over as they are: every one the collector accepts.
    assert all(decode_events(encode(event)) == [event] for event in context.received)
