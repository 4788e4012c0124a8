"""The agent's SQLite spool: seq, order, PUBACK marking, retention, bounds, batches."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.spool import SEQ_BLOCK, Spool, SpoolError
from branchwatch.contract import decode_events


def event(seq: int, pad: int = 0) -> bytes:
    extra = f', "reason": "{"x" * pad}"' if pad else ""
    return (
        f'{{"v": 1, "seq": {seq}, "ts": {1764053400 + seq}, "device": "q1", '
        f'"type": "counter.paused", "counter": "c1"{extra}}}'
    ).encode()


def fill(spool: Spool, n: int, pad: int = 0) -> None:
    for _ in range(n):
        seq = spool.next_seq
        spool.append(seq, 1764053400.0 + seq, event(seq, pad))


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_053_400.0

    def __call__(self) -> float:
        return self.now


def test_seq_starts_at_one_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        assert spool.next_seq == 1
        fill(spool, 3)
        assert spool.last_seq == 3
    with Spool(path) as spool:
        assert spool.next_seq == 4
        assert spool.depth == 3


def test_seq_never_reused_even_if_every_event_is_gone(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, retention_seconds=10, clock=clock) as spool:
        fill(spool, 5)
        spool.mark_sent(1, 5)
        clock.now += 11
        assert spool.prune() == 5
        assert spool.held == 0
    with Spool(path) as spool:
        assert spool.next_seq == 6


def test_seq_skips_ahead_after_a_lost_commit(tmp_path: Path) -> None:
    """A power cut may roll back the last commits: the reserved ceiling prevents reuse."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        fill(spool, 3)
    db = sqlite3.connect(path)  # simulate a power cut: commits rolled back, another boot
    db.execute("DELETE FROM events WHERE seq > 1")
    db.execute("UPDATE meta SET value = 1 WHERE key = 'last_seq'")
    db.execute("UPDATE meta SET value = 0 WHERE key = 'clean'")
    db.execute("UPDATE meta SET value = 42 WHERE key = 'boot'")
    db.commit()
    db.close()
    with Spool(path) as spool:
        assert spool.next_seq > 3
        assert spool.next_seq <= 1 + SEQ_BLOCK + 1


def test_a_crash_of_the_agent_does_not_skip_seq(tmp_path: Path) -> None:
    """kill -9: not closed cleanly, but the same boot: every commit is there, no jump."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    fill(spool, 3)
    spool._lock_file.close()  # what the kernel does for a killed process
    with Spool(path) as again:
        assert again.next_seq == 4


def test_append_out_of_order_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool, pytest.raises(SpoolError, match="out of order"):
        spool.append(2, 0.0, event(2))


def test_a_second_agent_cannot_open_the_same_spool(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db"), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path / "s.db")


def test_unsent_batches_in_order_and_marking_on_puback(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 3)
        batch = spool.unsent_batch()
        assert batch is not None
        assert (batch.first_seq, batch.last_seq, batch.event_count) == (1, 3, 3)
        assert [e.seq for e in decode_events(batch.payload)] == [1, 2, 3]
        spool.mark_sent(1, 2)
        assert spool.depth == 1
        single = spool.unsent_batch()
        assert single is not None and single.event_count == 1
        assert json.loads(single.payload)["seq"] == 3  # one event: an object, not an array
        spool.mark_sent(3, 3)
        assert spool.unsent_batch() is None
        assert spool.depth == 0 and spool.oldest_unsent_ts() is None
        assert spool.last_sent_seq() == 3


def test_oldest_unsent_ts(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 3)
        spool.mark_sent(1, 1)
        assert spool.oldest_unsent_ts() == 1764053402.0


def test_batches_hold_at_most_500_events(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 1203)
        sizes = []
        while (batch := spool.unsent_batch()) is not None:
            events = decode_events(batch.payload)  # the collector's own rules
            assert len(events) == batch.event_count <= 500
            sizes.append(batch.event_count)
            spool.mark_sent(batch.first_seq, batch.last_seq)
        assert sizes == [500, 500, 203]


def test_batches_hold_at_most_64_kib(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 600, pad=190)  # ~300 bytes each: 500 would be ~150 KiB
        total = 0
        while (batch := spool.unsent_batch()) is not None:
            assert len(batch.payload) <= 64 * 1024
            assert len(decode_events(batch.payload)) == batch.event_count
            total += batch.event_count
            spool.mark_sent(batch.first_seq, batch.last_seq)
        assert total == 600


def test_retention_keeps_sent_events_for_replay_then_prunes(tmp_path: Path) -> None:
    clock = Clock()
    with Spool(tmp_path / "s.db", retention_seconds=3600, clock=clock) as spool:
        fill(spool, 10)
        spool.mark_sent(1, 8)
        clock.now += 1800
        assert spool.prune() == 0
        replayed = [
            e.seq
            for b in spool.held_batches(4, spool.last_sent_seq())
            for e in decode_events(b.payload)
        ]
        assert replayed == [4, 5, 6, 7, 8]
        clock.now += 1801
        assert spool.prune() == 8  # unsent events are never pruned by age
        assert spool.held == 2 and spool.depth == 2
        assert spool.oldest_held_seq() == 9


def test_replay_batches_respect_limits(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 1100)
        spool.mark_sent(1, 1100)
        batches = list(spool.held_batches(50, 1100))
        assert [b.event_count for b in batches] == [500, 500, 51]
        assert batches[0].first_seq == 50 and batches[-1].last_seq == 1100


def test_drop_oldest_at_the_bound_is_counted_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_events=100) as spool:
        fill(spool, 30)
        spool.mark_sent(1, 30)  # sent events go first and are not "dropped"
        fill(spool, 100)
        assert spool.held == 100
        assert spool.dropped == 0
        fill(spool, 25)
        assert spool.held == 100
        assert spool.dropped == 25
        assert spool.depth == 100
        assert spool.oldest_held_seq() == 56
    with Spool(path, max_events=100) as spool:
        assert spool.dropped == 25 and spool.depth == 100


def test_drop_oldest_by_size(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", max_bytes=10_000) as spool:
        fill(spool, 200)
        assert spool.dropped > 0
        assert spool.held + spool.dropped == 200
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT total(length(payload)) FROM events").fetchone()[0] <= 10_000
    db.close()


def test_session_counter_persists(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path) as spool:
        assert spool.next_session() == 1
        assert spool.next_session() == 2
    with Spool(path) as spool:
        assert spool.next_session() == 3


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(SpoolError, match="cannot create spool"):
        Spool(blocked / "spool.db")
