"""The collector's batched MQTT reads against a real Mosquitto: QoS 1 kept, both protocols."""

from __future__ import annotations

import socket
import threading
from collections import Counter

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.mqttconfig import MqttProtocol
from collector.config import MqttConfig
from collector.mqtt import MqttSession
from collector.mqttwire import BatchingClient
from tests.support import mqtt_client, wait_until

pytestmark = pytest.mark.integration

TOPIC = "bw/v1/north/br-0001/edge-1/events"


def session(broker: EmbeddedBroker, protocol: MqttProtocol, handler: object) -> MqttSession:
    config = MqttConfig(
        broker=broker.url,
        client_id=f"batched-{protocol}",
        protocol=protocol,
        reconnect_min_seconds=0.2,
        reconnect_max_seconds=0.5,
    )
    started = MqttSession(config, handler)  # type: ignore[arg-type]
    assert isinstance(started.client, BatchingClient)
    started.start()
    wait_until(started.ready.is_set, 10, "subscribed")
    return started


def publish(broker: EmbeddedBroker, payloads: list[bytes]) -> None:
    client = mqtt_client(broker.port)
    try:
        infos = [client.publish(TOPIC, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_every_message_arrives_in_order(mosquitto: EmbeddedBroker, protocol: MqttProtocol) -> None:
    got: list[bytes] = []
    subject = session(mosquitto, protocol, lambda topic, payload: got.append(payload))
    try:
        # Small and large messages: many per read, and one spread over several reads.
        payloads = [b"m%05d" % i + b"x" * (300_000 if i % 500 == 7 else 100) for i in range(2000)]
        publish(mosquitto, payloads)
        wait_until(lambda: len(got) >= len(payloads), 20, "every message")
        assert got == payloads
    finally:
        subject.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_what_was_not_acknowledged_comes_again(
    mosquitto: EmbeddedBroker, protocol: MqttProtocol
) -> None:
    """The connection dies while a message is being handled: it and the rest of its read
    were not acknowledged, so the broker delivers them again on the persistent session."""
    seen: Counter[bytes] = Counter()
    broken = threading.Event()
    holder: list[MqttSession] = []

    def handler(topic: str, payload: bytes) -> None:
        seen[payload] += 1
        if payload == b"m0150" and not broken.is_set():
            broken.set()
            sock = holder[0].client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)  # as if the network died mid-read

    subject = session(mosquitto, protocol, handler)
    holder.append(subject)
    try:
        payloads = [b"m%04d" % i for i in range(300)]
        publish(mosquitto, payloads)
        wait_until(lambda: all(seen[p] for p in payloads), 20, "every message, after a reconnect")
        assert broken.is_set() and seen[b"m0150"] == 2
        assert not [p for p in payloads if seen[p] > 2]
    finally:
        subject.stop()
