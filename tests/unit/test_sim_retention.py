"""What the simulated agent keeps for replays, and how it packs events into messages."""

from __future__ import annotations

import argparse

import pytest

from branchwatch.contract import decode_events, encode
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.sim import generate
from branchwatch.sim.cli import configure, settings_from
from branchwatch.sim.retention import SentEvents, pack


def test_sent_events_are_bounded_by_count_and_age() -> None:
    kept = SentEvents(max_events=5, max_age=100.0)
    for seq in range(1, 9):
        kept.add(seq, 1000.0 + seq, b"%d" % seq)
    assert len(kept) == 5 and kept.first_seq == 4
    assert kept.since(6) == [b"6", b"7", b"8"]
    assert kept.since(1) == [b"4", b"5", b"6", b"7", b"8"], "all it still holds"
    assert kept.since(9) == []
    kept.add(9, 1106.0, b"9")  # 100 s after seq 6: 4, 5 are too old
    assert kept.first_seq == 6
    assert SentEvents().since(1) == []


def test_pack_keeps_order_and_the_contract_bounds() -> None:
    events = [e for _, _, _, e in generate(1, 1, 6 * 3600)][:1500]
    payloads = [encode(e) for e in events]
    messages = list(pack(payloads))
    decoded = [e for m in messages for e in decode_events(m)]
    assert decoded == events
    assert all(len(m) <= MAX_MESSAGE_BYTES for m in messages)
    assert all(len(decode_events(m)) <= MAX_BATCH_EVENTS for m in messages)
    assert len(messages) >= 3
    assert list(pack(payloads[:1])) == [payloads[0]], "one event: a plain object"
    assert list(pack(payloads[:2])) == [b"[" + payloads[0] + b"," + payloads[1] + b"]"]
    small = list(pack(payloads[:7], max_events=3))
    assert [len(decode_events(m)) for m in small] == [3, 3, 1]
    assert small[-1] == payloads[6]
    tight = list(pack(payloads[:4], max_bytes=len(payloads[0]) + 2))
    assert [decode_events(m)[0].seq for m in tight] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"branches": 3, "speed": 1.0, "start_hour": 9.0, "mqtt_protocol": "5"}),
        (
            ["--branches", "7", "--speed", "12.5", "--seed", "9", "--regions", "a,b"],
            {"branches": 7, "speed": 12.5, "seed": 9, "regions": ("a", "b")},
        ),
        (
            ["--broker", "mqtts://broker.example:8884", "--mqtt-protocol", "3.1.1"],
            {"mqtt_protocol": "3.1.1"},
        ),
    ],
)
def test_cli_settings(argv: list[str], expected: dict[str, object]) -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    settings = settings_from(parser.parse_args(argv))
    for key, value in expected.items():
        assert getattr(settings, key) == value
    assert settings.seq_base == 1
    if argv[:1] == ["--broker"]:
        assert (settings.broker.host, settings.broker.port, settings.broker.tls) == (
            "broker.example",
            8884,
            True,
        )
    else:
        assert (settings.broker.host, settings.broker.port) == ("127.0.0.1", 1883)
