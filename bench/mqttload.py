"""Benchmark loads, pre-encoded as MQTT packets, and a publisher that is never the limit.

A consumer's rate is only its own if the publisher offers more than it takes.
A Python MQTT publisher is slower than the broker (paho ~35k msg/s on this
machine), so the load is encoded once into QoS 1 PUBLISH packets of MQTT 3.1.1
and written by a raw socket in a process of its own, paced to a fixed rate
(``python -m bench.mqttload``). Its PUBACKs are read and counted, so a run
knows the broker took every message.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from branchwatch.contract import encode, topic_for
from branchwatch.contract.events import Event
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.sim.generate import generate, generate_batches

Message = tuple[str, bytes]
PUBACK_SIZE = 4  # 0x40, remaining length 2, packet id


def single_events(branches: int, messages: int, seed: int) -> list[Message]:
    """``messages`` single-event messages from the simulator, over ``branches`` branches."""
    origin = time.time() - 3600
    stream = generate(branches, seed, sim_seconds=8 * 3600, ts_origin=origin)
    return [
        (topic_for(region, branch, agent, "events"), encode(event))
        for region, branch, agent, event in itertools.islice(stream, messages)
    ]


def batches(
    branches: int, seed: int, hours: float = 9.0, regions: Sequence[str] = ("north", "south")
) -> tuple[list[Message], int]:
    """Each branch's first ``hours`` of a business day as arrays of up to 500 events and
    64 KiB, as an agent catching up sends them; the messages and the number of events."""
    span = hours * 3600
    origin = time.time() - span
    day = generate_batches(
        branches, seed, sim_seconds=span, step=span, ts_origin=origin, regions=regions
    )
    size = MAX_BATCH_EVENTS
    out: list[Message] = []
    events = 0
    for region, branch, agent, day_events in day:
        topic = topic_for(region, branch, agent, "events")
        start = 0
        while start < len(day_events):
            chunk: Sequence[Event] = day_events[start : start + size]
            payload = encode(chunk)
            while len(payload) > MAX_MESSAGE_BYTES:  # ~130 bytes an event: rarely 500
                chunk = chunk[: len(chunk) * 9 // 10]
                payload = encode(chunk)
            out.append((topic, payload))
            events += len(chunk)
            start += len(chunk)
    return out, events


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packets(messages: Iterable[Message]) -> bytes:
    """QoS 1 PUBLISH packets (MQTT 3.1.1) of ``messages``, packet ids 1..65535 in turn."""
    out = bytearray()
    for index, (topic, payload) in enumerate(messages):
        name = topic.encode()
        body = struct.pack("!H", len(name)) + name + struct.pack("!H", index % 65535 + 1)
        out += b"\x32" + _remaining_length(len(body) + len(payload)) + body + payload
    return bytes(out)


def packet_offsets(data: bytes) -> list[int]:
    """Where each packet of ``data`` starts, and its end as the last entry."""
    offsets = []
    pos = 0
    while pos < len(data):
        offsets.append(pos)
        length, mult, pos = 0, 1, pos + 1
        while True:
            byte = data[pos]
            pos += 1
            length += (byte & 0x7F) * mult
            mult *= 128
            if not byte & 0x80:
                break
        pos += length
    offsets.append(pos)
    return offsets


def connect_packet(client_id: str) -> bytes:
    name = client_id.encode()
    # protocol "MQTT" level 4, clean session, keepalive 0 (no PINGREQ to interleave)
    body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(name)) + name
    return b"\x10" + _remaining_length(len(body)) + body


@dataclass
class Published:
    messages: int
    acked: int
    started: float  # time.monotonic() of the first byte sent (the clock is system-wide)
    seconds: float  # first byte sent to last PUBACK read

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


def publish(host: str, port: int, data: bytes, rate: float, client_id: str) -> Published:
    """Write ``data`` (PUBLISH packets) at ``rate`` messages/s; wait for every PUBACK."""
    offsets = packet_offsets(data)
    total = len(offsets) - 1
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    connack = sock.recv(4)
    if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
        raise RuntimeError(f"broker refused the bench publisher: {connack!r}")
    acked = 0
    done = threading.Event()
    last_ack = 0.0

    def read_acks() -> None:
        nonlocal acked, last_ack
        pending = 0
        while pending < total * PUBACK_SIZE:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            pending += len(chunk)
        last_ack = time.monotonic()
        acked = pending // PUBACK_SIZE
        done.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    view = memoryview(data)
    slot = 0.002  # pace in 2 ms slices: smooth enough, few syscalls
    per_slot = max(1, round(rate * slot)) if rate > 0 else total
    started = time.monotonic()
    sent = 0
    while sent < total:
        end = min(total, sent + per_slot)
        sock.sendall(view[offsets[sent] : offsets[end]])
        sent = end
        if rate > 0:
            due = started + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    done.wait(600)
    sock.close()
    return Published(total, acked, started, last_ack - started)


class Publisher:
    """``python -m bench.mqttload`` publishing a packet file, as a subprocess."""

    def __init__(self, host: str, port: int, packets: Path, rate: float, client_id: str) -> None:
        argv = [sys.executable, "-m", "bench.mqttload", "--host", host, "--port", str(port),
                "--packets", str(packets), "--rate", str(rate),
                "--client-id", client_id]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def wait(self, timeout: float = 600) -> Published:
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"bench publisher failed ({self.proc.returncode})")
        fields = json.loads(out.strip().splitlines()[-1])
        return Published(**fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mqttload", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--packets", type=Path, required=True, help="from publish_packets()")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: unpaced")
    parser.add_argument("--client-id", default="bench-publisher")
    args = parser.parse_args(argv)
    data = args.packets.read_bytes()
    done = publish(args.host, args.port, data, args.rate, args.client_id)
    print(json.dumps(done.__dict__), flush=True)
    return 0 if done.acked == done.messages else 1


if __name__ == "__main__":
    sys.exit(main())
