"""paho's client with a batched receive path: many PUBLISH packets per read, one PUBACK write.

Measured on the collector's load (docs/benchmarks.md, issue 11), paho spends most
of a QoS 1 message on the socket, not on the message: it reads every packet
with three or more ``recv`` calls (the type byte, each length byte, the rest),
goes back to ``select`` after each one, builds a message object (and, in MQTT 5,
a properties object), and writes each PUBACK with its own ``send`` plus a wake-up
byte to its socket pair.

:class:`BatchingClient` keeps paho for everything but that hot path (connect, TLS,
subscribe, keep-alive, publish, reconnect, the broker's other packets): it
overrides ``_packet_read`` to read up to 256 KiB at once, hands each QoS 0/1
PUBLISH of the read straight to ``on_publish_received(topic, payload)``, and
queues the PUBACKs of the whole read as one write, *after* every message of it
was handled: a message is acknowledged only once applied, as with paho's own
automatic acks. Any other packet goes to paho's own handling.

It reaches into paho's internals (``_packet_read``, ``_in_packet``,
``_packet_handle``, ``_packet_queue``), so :func:`batching_supported` checks they
are there; without them the collector uses paho unchanged (slower, same result).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MQTTException

log = logging.getLogger(__name__)

# Big enough that a drained queue costs one syscall per ~2,000 small messages; small
# enough that a batch's acks are not held back long (the broker's inflight window waits).
READ_SIZE: Final = 256 << 10
PUBLISH: Final = 0x30
PUBACK: Final = 0x40
_PUBACK_HEAD: Final = b"\x40\x02"
_HOOKS: Final = ("_packet_read", "_packet_handle", "_packet_queue", "_sock_recv", "reconnect")

Receiver = Callable[[str, bytes], None]


def batching_supported() -> bool:
    """Whether this paho has the internals :class:`BatchingClient` relies on."""
    client = paho.Client(CallbackAPIVersion.VERSION2)
    fields = getattr(client, "_in_packet", None)
    return (
        all(callable(getattr(client, name, None)) for name in _HOOKS)
        and isinstance(fields, dict)
        and {"command", "packet", "remaining_length", "pos"} <= fields.keys()
        and hasattr(client, "_msgtime_mutex")
    )


class BatchingClient(paho.Client):
    """A paho client whose PUBLISH packets go to ``on_publish_received`` in batches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_received: Receiver | None = None
        self._v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        self._pending = bytearray()  # the start of a packet not yet whole

    def reconnect(self) -> MQTTErrorCode:
        self._pending.clear()  # a new connection starts at a packet boundary
        return super().reconnect()

    def _packet_read(self) -> MQTTErrorCode:
        try:
            data = self._sock_recv(READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as exc:  # TimeoutError and ssl.SSLError included
            log.debug("MQTT socket read failed: %s", exc)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        pending = self._pending
        if pending:
            pending += data
            buffer: bytes | bytearray = pending
        else:
            buffer = data
        acks: list[int] = []
        try:
            used, rc = self._handle_packets(buffer, acks)
        finally:
            if acks:
                self._send_pubacks(acks)
        if pending:
            del pending[:used]
        elif used < len(data):
            pending += data[used:]
        return rc

    def _handle_packets(
        self, data: bytes | bytearray, acks: list[int]
    ) -> tuple[int, MQTTErrorCode]:
        """Handle every whole packet in ``data``; (bytes used, paho's result code)."""
        receive = self.on_publish_received
        v5 = self._v5
        end = len(data)
        pos = 0
        while pos + 2 <= end:
            header = data[pos]
            length, cursor = _variable_int(data, pos + 1, end)
            if cursor == INCOMPLETE:
                return pos, MQTTErrorCode.MQTT_ERR_SUCCESS  # the rest comes next read
            if cursor == MALFORMED:
                return pos, MQTTErrorCode.MQTT_ERR_PROTOCOL
            body_end = cursor + length
            if body_end > end:
                return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
            qos = (header >> 1) & 3
            if header & 0xF0 == PUBLISH and qos < 2 and receive is not None and length >= 2:
                size = (data[cursor] << 8) | data[cursor + 1]
                start = cursor + 2 + size
                if size and start + 2 * qos <= body_end:
                    topic = bytes(data[cursor + 2 : start]).decode("utf-8", "replace")
                    if qos:
                        mid = (data[start] << 8) | data[start + 1]
                        start += 2
                    if v5:
                        start = _skip_properties(data, start, body_end)
                    if start >= 0:
                        receive(topic, bytes(data[start:body_end]))
                        if qos:
                            acks.append(mid)
                        pos = body_end
                        continue
            # Anything else (CONNACK, SUBACK, PINGRESP, PUBACK of our publishes, an odd
            # PUBLISH): paho's own handling, as if its reader had read the packet.
            rc = self._paho_packet(header, data[cursor:body_end])
            pos = body_end
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._sock is None:
                return pos, rc
        return pos, MQTTErrorCode.MQTT_ERR_SUCCESS

    def _paho_packet(self, header: int, body: bytes | bytearray) -> MQTTErrorCode:
        self._in_packet = {
            "command": header,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(body),
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc: MQTTErrorCode = self._packet_handle()
        except MQTTException as exc:  # paho's MalformedPacket
            log.debug("malformed MQTT packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(b""),
            "to_process": 0,
            "pos": 0,
        }
        return rc

    def _send_pubacks(self, mids: list[int]) -> None:
        """One write for the PUBACKs of a whole read (v5: reason omitted = success)."""
        packet = b"".join(_PUBACK_HEAD + struct.pack("!H", mid) for mid in mids)
        self._packet_queue(PUBACK, packet, 0, 0)


def _skip_properties(data: bytes | bytearray, pos: int, end: int) -> int:
    """Where an MQTT 5 PUBLISH's payload starts after its properties; -1 if malformed.

    The collector asks for no topic aliases (paho announces none), so the
    properties carry nothing it needs.
    """
    length, pos = _variable_int(data, pos, end)
    if pos < 0:
        return -1
    pos += length
    return pos if pos <= end else -1


INCOMPLETE: Final = -1
MALFORMED: Final = -2


def _variable_int(data: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos`` (1 to 4 bytes of 7 bits, least significant
    first: a packet's remaining length, a properties length): (value, position after it),
    the position :data:`INCOMPLETE` if ``data`` ends first, :data:`MALFORMED` past 4 bytes."""
    value = shift = 0
    while True:
        if pos >= end:
            return 0, INCOMPLETE
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            return 0, MALFORMED
