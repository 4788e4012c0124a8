"""Where a fresh spool's seqs and sessions start, and how the collector recognises one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from branchwatch.contract.seqs import (
    EARLIEST_BASE_SECONDS,
    NEW_SPOOL_JUMP,
    fresh_seq_base,
    fresh_session_base,
    is_new_spool,
    spool_start,
)

NOW = 1_795_000_000.0  # 2026-11-18


@given(
    created=st.floats(EARLIEST_BASE_SECONDS, 4_000_000_000),
    # From 2 s: a spool replaced within a second of the old one's creation, after it used
    # a seq, reads as an ordinary gap (docs/reliability.md, Gaps; the next test).
    life=st.integers(2, 10 * 365 * 86_400),
    rate=st.floats(0.0, 1_000.0),  # events per second over the old spool's life, far above real
)
def test_a_later_spool_starts_above_every_seq_an_older_one_used(
    created: float, life: int, rate: float
) -> None:
    old_last = fresh_seq_base(created) + int(rate * life)
    new_first = fresh_seq_base(created + life) + 1
    assert new_first > old_last
    assert is_new_spool(old_last, new_first)
    assert fresh_session_base(created + life) > fresh_session_base(created) + life - 1


def test_a_spool_replaced_within_its_first_second_reads_as_a_gap() -> None:
    """The documented limit of fresh-spool bases: one second holds one base."""
    old_last = fresh_seq_base(NOW) + 1
    new_first = fresh_seq_base(NOW + 1) + 1
    assert new_first > old_last
    assert not is_new_spool(old_last, new_first)


def test_a_spool_made_with_a_clock_in_1970_still_starts_above_counted_seqs() -> None:
    assert fresh_seq_base(0.0) == fresh_seq_base(EARLIEST_BASE_SECONDS)
    assert is_new_spool(5_000_000, fresh_seq_base(0.0) + 1)


@given(st.integers(1, NEW_SPOOL_JUMP - 1))
def test_the_first_seq_of_a_spool_follows_from_any_of_its_first_million(n: int) -> None:
    base = fresh_seq_base(NOW)
    assert spool_start(base + n) == base + 1


def test_an_ordinary_gap_is_not_a_new_spool() -> None:
    assert not is_new_spool(1_000, 1_000 + 1_001)  # a power cut's jump: one reserved block
    assert not is_new_spool(1_000, 1_000 + NEW_SPOOL_JUMP)
