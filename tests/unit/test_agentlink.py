"""The agent side of the wire contract, shared by the edge agent and the simulator."""

from __future__ import annotations

import pytest

from branchwatch import __version__
from branchwatch.agentlink import (
    ClockSessions,
    batches,
    first_batch,
    offline_status,
    online_status,
    read_command,
    will,
)
from branchwatch.contract import (
    DeviceStatus,
    Notify,
    Replay,
    SpoolStatus,
    decode_events,
    decode_status,
    encode,
)
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.errors import ContractError
from branchwatch.sim import generate


def test_online_will_and_offline_payloads_carry_the_session() -> None:
    devices = {"queue-1": DeviceStatus(kind="queue", link="up")}
    online = decode_status(online_status(7, 1764053400.0, devices, SpoolStatus(depth=2)))
    assert (online.state, online.session, online.ts, online.version) == (
        "online",
        7,
        1764053400.0,
        __version__,
    )
    assert online.devices == devices and online.spool == SpoolStatus(depth=2)
    assert will(7) == b'{"v":1,"state":"offline","session":7}', "the contract's exact will"
    offline = decode_status(offline_status(7, 1764053401.0))
    assert (offline.state, offline.session, offline.ts, offline.devices) == (
        "offline",
        7,
        1764053401.0,
        {},
    )


def test_clock_sessions_start_above_an_earlier_run() -> None:
    earlier = ClockSessions(1764053400.9)
    assert [earlier.next_session() for _ in range(3)] == [1764053401, 1764053402, 1764053403]
    later = ClockSessions(1764053460.0)  # a restart a minute later, after 3 connections
    assert later.next_session() > earlier.session


def test_read_command_takes_replay_and_notify_and_refuses_the_rest() -> None:
    assert read_command(b'{"v":1,"type":"replay","from_seq":7}') == Replay(v=1, from_seq=7)
    notice = read_command(bytearray(b'{"v":1,"type":"notify","id":"n-1","position":3,"text":"x"}'))
    assert notice == Notify(v=1, id="n-1", position=3, text="x")
    for payload, reason in [
        (b'{"v":1,"type":"explode"}', "unknown_type"),
        (b"\xff not json", "bad_json"),
        (b'{"v":1,"type":"replay"}', "missing_field"),
        ("a str", "bad_shape"),
        (None, "bad_shape"),
    ]:
        with pytest.raises(ContractError) as caught:
            read_command(payload)
        assert caught.value.reason == reason, payload


def test_batches_keep_order_and_the_contract_bounds() -> None:
    events = [e for _, _, _, e in generate(1, 1, 6 * 3600)][:1500]
    rows = [(e.seq, encode(e)) for e in events]
    payloads = [payload for _, payload in rows]
    messages = [b.payload for b in batches(rows)]
    decoded = [e for m in messages for e in decode_events(m)]
    assert decoded == events
    assert all(len(m) <= MAX_MESSAGE_BYTES for m in messages)
    assert all(len(decode_events(m)) <= MAX_BATCH_EVENTS for m in messages)
    assert len(messages) >= 3
    assert [b.payload for b in batches(rows[:1])] == [payloads[0]], "one event: a plain object"
    assert [b.payload for b in batches(rows[:2])] == [
        b"[" + payloads[0] + b"," + payloads[1] + b"]"
    ]
    small = list(batches(rows[:7], max_events=3))
    assert [(b.first_seq, b.last_seq, b.event_count) for b in small] == [
        (1, 3, 3),
        (4, 6, 3),
        (7, 7, 1),
    ]
    assert small[-1].payload == payloads[6]
    tight = list(batches(rows[:4], max_bytes=len(payloads[0]) + 2))
    assert [decode_events(b.payload)[0].seq for b in tight] == [1, 2, 3, 4]
    assert first_batch(rows[:7], max_events=3) == small[0]
    assert first_batch([]) is None
