"""The demo's fallback: amqtt (MQTT 3.1.1 only) when Mosquitto is not installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchwatch.broker import EmbeddedBroker
from tests.support import CollectorProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def amqtt() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker("amqtt") as broker:  # amqtt is in the dev/demo extras: always here
        assert broker.mqtt_protocol == "3.1.1"
        yield broker


def test_collector_and_simulator_over_mqtt_3_1_1(amqtt: EmbeddedBroker, tmp_path: Path) -> None:
    collector = CollectorProcess(
        amqtt.url, tmp_path, "amqtt-collector", extra=["--mqtt-protocol", "3.1.1"]
    ).start()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "branchwatch", "simulate", "--broker", amqtt.url,
         "--branches", "3", "--speed", "120", "--start-hour", "10", "--seed", "7",
         "--mqtt-protocol", "3.1.1", "--duration", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def three_busy_branches() -> list[Any] | None:
            branches: list[Any] = collector.api("/branches")["branches"]
            busy = [b for b in branches if b["issued_total"] > 0 and b["open"]]
            return branches if len(busy) == 3 else None

        branches = wait_until(three_busy_branches, 20, "3 simulated branches over amqtt")
        assert {b["branch"] for b in branches} == {"br-0001", "br-0002", "br-0003"}
        assert all(b["agents"] and b["agents"][0]["up"] for b in branches)
    finally:
        simulator.terminate()
        simulator.wait(10)
        collector.kill()
