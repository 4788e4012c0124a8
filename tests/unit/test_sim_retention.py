"""What the simulated agent keeps for replays, and the simulator's command-line settings."""

from __future__ import annotations

import argparse
import logging

import pytest

from branchwatch.agentlink import replay_batches
from branchwatch.sim.cli import configure, settings_from
from branchwatch.sim.retention import SentEvents


def held(kept: SentEvents, from_seq: int, to_seq: int | None = None) -> list[bytes]:
    last = kept.last_sent_seq() if to_seq is None else to_seq
    return [b.payload for b in kept.held_batches(from_seq, last)]


def test_sent_events_are_bounded_by_count_and_age() -> None:
    kept = SentEvents(max_events=5, max_age=100.0)
    for seq in range(1, 9):
        kept.add(seq, 1000.0 + seq, b"%d" % seq)
    assert len(kept) == 5 and kept.oldest_held_seq() == 4 and kept.last_sent_seq() == 8
    assert held(kept, 6) == [b"[6,7,8]"]
    assert held(kept, 1) == [b"[4,5,6,7,8]"], "all it still holds"
    assert held(kept, 5, 6) == [b"[5,6]"]
    assert held(kept, 7, 7) == [b"7"], "one event: a plain object"
    assert held(kept, 9) == []
    kept.add(9, 1106.0, b"9")  # 100 s after seq 6: 4, 5 are too old
    assert kept.oldest_held_seq() == 6
    empty = SentEvents()
    assert (empty.oldest_held_seq(), empty.last_sent_seq(), held(empty, 1)) == (None, 0, [])


def test_a_replay_says_when_asked_events_are_no_longer_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kept = SentEvents(max_events=3)
    for seq in range(1, 6):
        kept.add(seq, 1000.0 + seq, b"%d" % seq)
    with caplog.at_level(logging.WARNING, "branchwatch.agentlink"):
        assert [b.payload for b in replay_batches(kept, 4, "north/br-0001")] == [b"[4,5]"]
        assert not caplog.records
        assert [b.payload for b in replay_batches(kept, 1, "north/br-0001")] == [b"[3,4,5]"]
        assert [b.payload for b in replay_batches(kept, 9, "north/br-0001")] == []
    assert [r.getMessage() for r in caplog.records] == [
        "replay for north/br-0001 from seq 1: events before 3 are no longer held"
    ]


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
