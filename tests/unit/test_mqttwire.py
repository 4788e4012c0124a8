"""The batched receive path of the collector's MQTT client, on bytes cut every which way."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from collector.mqttwire import BatchingClient, batching_supported


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: str, payload: bytes, mid: int, qos: int = 1, props: bytes | None = None
) -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name
    if qos:
        body += struct.pack("!H", mid)
    if props is not None:  # MQTT 5: property length, properties
        body += _length(len(props)) + props
    return bytes([0x30 | qos << 1]) + _length(len(body) + len(payload)) + body + payload


class NoSocket:
    """Stands for the socket where paho only checks that there is one, and closes it."""

    def close(self) -> None:
        pass


class FedClient(BatchingClient):
    """Reads from a list of chunks; records what it handed over and what it queued."""

    def __init__(self, chunks: list[bytes], v5: bool) -> None:
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        super().__init__(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.chunks = chunks
        self.log: list[tuple[str, Any]] = []
        self.on_publish_received = lambda topic, payload: self.log.append(("msg", (topic, payload)))
        self._sock = NoSocket()  # type: ignore[assignment]

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        return self.chunks.pop(0)

    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: Any = None) -> MQTTErrorCode:  # fmt: skip
        acks = [struct.unpack("!H", packet[i + 2 : i + 4])[0] for i in range(0, len(packet), 4)]
        assert all(packet[i : i + 2] == b"\x40\x02" for i in range(0, len(packet), 4))
        self.log.append(("acks", acks))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def drain(self) -> None:
        while self.chunks:
            assert self._packet_read() in (MQTTErrorCode.MQTT_ERR_SUCCESS,)

    def messages(self) -> list[tuple[str, bytes]]:
        return [entry for kind, entry in self.log if kind == "msg"]

    def acked(self) -> list[int]:
        return [mid for kind, mids in self.log if kind == "acks" for mid in mids]


def stream(v5: bool) -> tuple[bytes, list[tuple[str, bytes]]]:
    rng = random.Random(4)
    sent = []
    data = bytearray()
    for i in range(300):
        topic = f"bw/v1/north/br-{i % 7:04d}/edge-1/events"
        # Sizes across the 1-, 2- and 3-byte remaining lengths.
        payload = rng.randbytes(rng.choice((5, 200, 20_000)))
        props = (b"\x01\x01" if i % 2 else b"") if v5 else None  # payload format indicator
        data += publish(topic, payload, i % 65535 + 1, props=props)
        sent.append((topic, payload))
    return bytes(data), sent


def test_this_paho_has_what_batching_needs() -> None:
    assert batching_supported()


@pytest.mark.parametrize("v5", [False, True])
@pytest.mark.parametrize("cut", ["whole", "bytes", "random"])
def test_every_message_once_in_order_however_the_reads_fall(v5: bool, cut: str) -> None:
    data, sent = stream(v5)
    if cut == "whole":
        chunks = [data]
    elif cut == "bytes":
        chunks = [data[i : i + 1] for i in range(min(len(data), 5000))]
        chunks.append(data[5000:])
    else:
        rng = random.Random(9)
        chunks, pos = [], 0
        while pos < len(data):
            step = rng.randrange(1, 40_000)
            chunks.append(data[pos : pos + step])
            pos += step
    client = FedClient(chunks, v5)
    client.drain()
    assert client.messages() == sent
    assert client.acked() == [i % 65535 + 1 for i in range(len(sent))]
    assert not client._pending


def test_a_read_is_acknowledged_after_all_of_its_messages_were_handled() -> None:
    first = publish("a/b", b"1", 1) + publish("a/b", b"2", 2)
    second = publish("a/b", b"3", 3)
    client = FedClient([first, second], v5=False)
    client.drain()
    kinds = [(kind, entry if kind == "acks" else entry[1]) for kind, entry in client.log]
    assert kinds == [("msg", b"1"), ("msg", b"2"), ("acks", [1, 2]), ("msg", b"3"), ("acks", [3])]


def test_qos_0_is_handed_over_and_not_acknowledged() -> None:
    client = FedClient([publish("a/b", b"x", 0, qos=0)], v5=False)
    client.drain()
    assert client.messages() == [("a/b", b"x")] and client.acked() == []


def test_other_packets_go_to_paho_between_messages() -> None:
    pingresp = b"\xd0\x00"
    client = FedClient([publish("a/b", b"1", 1) + pingresp + publish("a/b", b"2", 2)], v5=False)
    client._ping_t = 123.0  # a PINGREQ outstanding
    client.drain()
    assert client._ping_t == 0  # paho's PINGRESP handling ran
    assert [m[1] for m in client.messages()] == [b"1", b"2"] and client.acked() == [1, 2]


def test_a_broken_length_is_a_protocol_error_not_a_hang() -> None:
    client = FedClient([b"\x32\xff\xff\xff\xff\x01" + b"\0" * 10], v5=False)
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL


def test_a_closed_connection_is_reported_and_a_reconnect_drops_a_partial_packet() -> None:
    client = FedClient([publish("a/b", b"whole", 1)[:-2], b""], v5=False)
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS  # waiting for the rest
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert client._pending
    with pytest.raises(ValueError):
        client.reconnect()  # never connected: paho refuses, but the partial packet is gone
    assert not client._pending
