"""Collector ingest rate vs a bare paho subscriber that only counts (docs/benchmarks.md).

Both consumers drain the same queue from the same Mosquitto in the same run:
each first subscribes with a persistent session and disconnects, the load is
then published and queued by the broker, and the consumer reconnects and
drains it. The publisher's speed therefore cannot limit either rate, and the
ratio collector/bare is what the collector's own work costs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import subscription_filter
from collector.app import Collector
from collector.config import CollectorConfig, HttpConfig, MqttConfig

Message = tuple[str, bytes]


@dataclass
class Drain:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def publish_all(broker: EmbeddedBroker, messages: Sequence[Message]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    # Message ids are 16 bits: never have more than 30k of them outstanding.
    for start in range(0, len(messages), 30_000):
        chunk = messages[start : start + 30_000]
        infos = [client.publish(topic, payload, qos=1) for topic, payload in chunk]
        for info in infos:
            info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def _session_client(client_id: str) -> paho.Client:
    return paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )


def _connect(client: paho.Client, broker: EmbeddedBroker) -> None:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=props)


def bare_drain(broker: EmbeddedBroker, messages: Sequence[Message], timeout: float) -> Drain:
    """A paho subscriber that only counts: the ceiling for any Python consumer."""
    client_id = "bench-bare"
    subscribed = threading.Event()
    primer = _session_client(client_id)
    primer.on_subscribe = lambda *_: subscribed.set()
    _connect(primer, broker)
    primer.loop_start()
    primer.subscribe(subscription_filter("events"), options=SubscribeOptions(qos=1))
    if not subscribed.wait(10):
        raise RuntimeError("bare subscriber: no SUBACK")
    primer.disconnect()
    primer.loop_stop()

    publish_all(broker, messages)
    total = len(messages)
    done = threading.Event()
    state = {"count": 0, "first": 0.0, "last": 0.0}

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        state["count"] += 1
        now = time.perf_counter()
        if state["count"] == 1:
            state["first"] = now
        if state["count"] >= total:
            state["last"] = now
            done.set()

    client = _session_client(client_id)
    client.on_message = on_message
    _connect(client, broker)
    client.loop_start()
    finished = done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"bare subscriber got {state['count']} of {total}")
    return Drain(total - 1, state["last"] - state["first"])


def collector_config(broker: EmbeddedBroker) -> CollectorConfig:
    return CollectorConfig(
        mqtt=MqttConfig(broker=broker.url, client_id="bench-collector"),
        http=HttpConfig(listen="127.0.0.1:0"),
    )


def collector_drain(
    broker: EmbeddedBroker, messages: Sequence[Message], timeout: float
) -> tuple[Drain, Collector]:
    """The real collector (in this process), draining the same load. Returns it running."""
    primer = Collector(collector_config(broker))
    primer.start()
    if not primer.mqtt.ready.wait(10):
        raise RuntimeError("collector did not subscribe")
    primer.stop()

    publish_all(broker, messages)
    total = len(messages)
    # Steady state: every event applied at once, none held for a rebuild (these agents
    # never answer a replay).
    collector = Collector(collector_config(broker), rebuild=False)
    counters = collector.metrics
    handled = (counters.accepted, counters.duplicate, counters.rejected_messages)

    def count() -> float:
        return float(sum(c._value.get() for c in handled))  # a cheap read: no render

    collector.start()
    deadline = time.monotonic() + timeout
    first = 0.0
    while time.monotonic() < deadline:
        seen = count()
        now = time.perf_counter()
        if seen and not first:
            first = now
            first_count = seen
        if seen >= total:
            return Drain(int(total - first_count), now - first), collector
        time.sleep(0.002)
    collector.stop()
    raise RuntimeError(f"collector handled {count()} of {total}")
