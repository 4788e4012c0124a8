"""The agent's SQLite spool: seq, order, PUBACK marking, retention, bounds, batches.

(A full disk and a corrupt file: tests/unit/test_agent_spool_faults.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.spool import SEQ_BLOCK, Spool, SpoolError
from branchwatch.contract import decode_events
from branchwatch.contract.seqs import fresh_seq_base, fresh_session_base, is_new_spool

TS0 = 1764053400.0


def event(seq: int, pad: int = 0, ts: float = TS0) -> bytes:
    extra = f', "reason": "{"x" * pad}"' if pad else ""
    return (
        f'{{"v": 1, "seq": {seq}, "ts": {ts}, "device": "q1", '
        f'"type": "counter.paused", "counter": "c1"{extra}}}'
    ).encode()


def fill(spool: Spool, n: int, pad: int = 0) -> None:
    """Append ``n`` events; the k-th event of the spool (from 1) has ts TS0 + k."""
    for _ in range(n):
        seq = spool.next_seq
        ts = TS0 + spool.held + spool.dropped + 1
        spool.append(seq, ts, event(seq, pad, ts))


def first(spool: Spool) -> int:
    """The seq of the spool's first event (events are numbered from here in these tests)."""
    return spool.next_seq - spool.held - spool.dropped


class Clock:
    def __init__(self) -> None:
        self.now = 1_795_996_800.0  # 2026-11-30: after seqs.EARLIEST_BASE_SECONDS

    def __call__(self) -> float:
        return self.now


def test_a_fresh_spool_starts_at_the_clock_base_and_survives_reopen(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, clock=clock) as spool:
        assert spool.fresh
        base = fresh_seq_base(clock.now)
        assert spool.next_seq == base + 1
        assert spool.next_session() == fresh_session_base(clock.now) + 1
        fill(spool, 3)
        assert spool.last_seq == base + 3
    clock.now += 60  # a reopened spool keeps counting: the clock no longer matters
    with Spool(path, clock=clock) as spool:
        assert not spool.fresh
        assert spool.next_seq == base + 4
        assert spool.depth == 3
        assert spool.next_session() == fresh_session_base(clock.now - 60) + 2


def test_a_spool_deleted_and_made_again_never_reuses_seqs_or_sessions(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, clock=clock) as old:
        fill(old, 5_000)  # more than a block of reserved seqs
        for _ in range(10):  # a connection every few seconds at most (backoff)
            old_session = old.next_session()
        old_last = old.last_seq
    for leftover in tmp_path.glob("spool.db*"):
        leftover.unlink()
    clock.now += 60  # a minute later: a new disk, a reinstalled PC
    with Spool(path, clock=clock) as new:
        assert new.fresh
        assert new.next_seq > old_last
        assert is_new_spool(old_last, new.next_seq)  # how the collector tells it apart
        assert new.next_session() > old_session


def test_a_spool_from_before_fresh_bases_keeps_counting(tmp_path: Path) -> None:
    """Only a spool created empty starts at the clock base; an existing one goes on."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        pass
    db = sqlite3.connect(path)  # as an older agent left it: seq 222, session 7
    db.execute("DELETE FROM meta WHERE key <> 'schema'")
    db.execute("INSERT INTO meta VALUES ('last_seq', 222), ('session', 7), ('clean', 1)")
    db.commit()
    db.close()
    with Spool(path) as spool:
        assert not spool.fresh
        assert spool.next_seq == 223
        assert spool.next_session() == 8


def test_seq_never_reused_even_if_every_event_is_gone(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, retention_seconds=10, clock=clock) as spool:
        fill(spool, 5)
        spool.mark_sent(first(spool), spool.last_seq)
        clock.now += 11
        assert spool.prune() == 5
        assert spool.held == 0
        last = spool.last_seq
    with Spool(path) as spool:
        assert spool.next_seq == last + 1


def test_seq_skips_ahead_after_a_lost_commit(tmp_path: Path) -> None:
    """A power cut may roll back the last commits: the reserved ceiling prevents reuse."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        fill(spool, 3)
        one = first(spool)
    db = sqlite3.connect(path)  # simulate a power cut: commits rolled back, another boot
    db.execute("DELETE FROM events WHERE seq > ?", (one,))
    db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (one,))
    db.execute("UPDATE meta SET value = 0 WHERE key = 'clean'")
    db.execute("UPDATE meta SET value = 42 WHERE key = 'boot'")
    db.commit()
    db.close()
    with Spool(path) as spool:
        assert spool.next_seq > one + 2
        assert spool.next_seq <= one + SEQ_BLOCK + 1


def test_a_crash_of_the_agent_does_not_skip_seq(tmp_path: Path) -> None:
    """kill -9: not closed cleanly, but the same boot: every commit is there, no jump."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    fill(spool, 3)
    spool._lock_file.close()  # what the kernel does for a killed process
    with Spool(path) as again:
        assert again.next_seq == spool.last_seq + 1


def test_append_out_of_order_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool, pytest.raises(SpoolError, match="out of order"):
        spool.append(spool.next_seq + 1, TS0, event(spool.next_seq + 1))


def test_a_second_agent_cannot_open_the_same_spool(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db"), pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path / "s.db")


def test_unsent_batches_in_order_and_marking_on_puback(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 3)
        one = first(spool)
        batch = spool.unsent_batch()
        assert batch is not None
        assert (batch.first_seq, batch.last_seq, batch.event_count) == (one, one + 2, 3)
        assert [e.seq for e in decode_events(batch.payload)] == [one, one + 1, one + 2]
        spool.mark_sent(one, one + 1)
        assert spool.depth == 1
        single = spool.unsent_batch()
        assert single is not None and single.event_count == 1
        assert json.loads(single.payload)["seq"] == one + 2  # one event: an object, no array
        spool.mark_sent(one + 2, one + 2)
        assert spool.unsent_batch() is None
        assert spool.depth == 0 and spool.oldest_unsent_ts() is None
        assert spool.last_sent_seq() == one + 2


def test_oldest_unsent_ts(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 3)
        spool.mark_sent(first(spool), first(spool))
        assert spool.oldest_unsent_ts() == TS0 + 2


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
        one = first(spool)
        spool.mark_sent(one, one + 7)
        clock.now += 1800
        assert spool.prune() == 0
        replayed = [
            e.seq
            for b in spool.held_batches(one + 3, spool.last_sent_seq())
            for e in decode_events(b.payload)
        ]
        assert replayed == [one + k for k in range(3, 8)]
        clock.now += 1801
        assert spool.prune() == 8  # unsent events are never pruned by age
        assert spool.held == 2 and spool.depth == 2
        assert spool.oldest_held_seq() == one + 8


def test_replay_batches_respect_limits(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        fill(spool, 1100)
        one = first(spool)
        spool.mark_sent(one, one + 1099)
        batches = list(spool.held_batches(one + 49, one + 1099))
        assert [b.event_count for b in batches] == [500, 500, 51]
        assert batches[0].first_seq == one + 49 and batches[-1].last_seq == one + 1099


def test_drop_oldest_at_the_bound_is_counted_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Spool(path, max_events=100) as spool:
        fill(spool, 30)
        one = first(spool)
        spool.mark_sent(one, one + 29)  # sent events go first and are not "dropped"
        fill(spool, 100)
        assert spool.held == 100
        assert spool.dropped == 0
        fill(spool, 25)
        assert spool.held == 100
        assert spool.dropped == 25
        assert spool.depth == 100
        assert spool.oldest_held_seq() == one + 55
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
        one = spool.next_session()
        assert spool.next_session() == one + 1
    with Spool(path) as spool:
        assert spool.next_session() == one + 2


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(SpoolError, match="cannot create spool"):
        Spool(blocked / "spool.db")
