"""The finished-ticket log against a plain ordered dict: same lookups, same order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.floor import finished_log
from collector.floor.branch import FinishedLog

IDS = st.sampled_from([b"A1", b"B17", b"C" * 32, b"W-9.z"])
RECORDS = st.binary(min_size=1, max_size=120)
PUT = st.tuples(st.sampled_from(["put", "add"]), IDS, RECORDS)
FORGET = st.tuples(st.just("forget"), IDS, st.just(b""))
# Mostly puts and forgets (a log worth checking), now and then the rest.
OPS = st.lists(
    st.one_of(
        PUT,
        PUT,
        PUT,
        FORGET,
        FORGET,
        st.tuples(st.sampled_from(["oldest", "restore", "clear"]), st.just(b""), st.just(b"")),
    ),
    max_size=60,
)


def _apply(log: FinishedLog, model: dict[bytes, bytes], op: str, key: bytes, rec: bytes) -> None:
    if op == "add":  # the newest, whether held or not
        finished_log.put(log, key, rec)
        model.pop(key, None)
        model[key] = rec
    elif op == "put":  # an update in place if held
        pos = finished_log.find(log, key)
        if pos is None:
            finished_log.put(log, key, rec)
        else:
            finished_log.replace(log, pos, rec)
        model[key] = rec  # a held id keeps its place
    elif op == "forget":
        pos = finished_log.find(log, key)
        assert (pos is None) == (key not in model)
        if pos is not None:
            finished_log.remove(log, pos)
            del model[key]
    elif op == "oldest":
        finished_log.drop_oldest(log)
        if model:
            del model[next(iter(model))]
    elif op == "clear":
        finished_log.clear(log)
        model.clear()
    else:
        finished_log.rebuild(log)


def _check(log: FinishedLog, model: dict[bytes, bytes]) -> None:
    assert list(finished_log.oldest_first(log)) == list(model.items())
    assert list(finished_log.newest_first(log)) == list(reversed(model.items()))
    assert log.count == len(model)
    assert len(log.index) == len(model)
    for key, rec in model.items():
        pos = finished_log.find(log, key)
        assert pos is not None and finished_log.record_at(log, pos) == rec
    for key in {b"A1", b"A2", b"B17", b"nope"} - set(model):
        assert finished_log.find(log, key) is None


@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_the_log_holds_what_a_dict_would(ops: list[tuple[str, bytes, bytes]]) -> None:
    log, model = FinishedLog(), dict[bytes, bytes]()
    for op, key, rec in ops:
        _apply(log, model, op, key, rec)
        _check(log, model)


@settings(max_examples=100, deadline=None)
@given(ops=OPS)
def test_ids_whose_hashes_collide_are_told_apart(
    ops: list[tuple[str, bytes, bytes]],
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finished_log, "_hash", lambda _: 7)
        log, model = FinishedLog(), dict[bytes, bytes]()
        for op, key, rec in ops:
            _apply(log, model, op, key, rec)
            _check(log, model)


def test_offsets_start_again_before_they_pass_32_bits() -> None:
    log = FinishedLog()
    finished_log.put(log, b"A1", b"r1")
    log.base = (1 << 32) - 100  # as after ~4 GiB of entries without a new day
    finished_log._index_entries(log)
    pos = finished_log.find(log, b"A1")
    assert pos == 0
    finished_log.put(log, b"A2", b"r2")
    assert log.base == 0
    assert [k for k, _ in finished_log.newest_first(log)] == [b"A2", b"A1"]
    pos = finished_log.find(log, b"A1")
    assert pos is not None and finished_log.record_at(log, pos) == b"r1"


def test_an_entry_too_long_for_its_length_byte_does_not_fit() -> None:
    assert finished_log.fits(b"C" * 32, b"r" * 220)
    assert not finished_log.fits(b"C" * 32, b"r" * 221)
    assert not finished_log.fits(b"", b"r")


@pytest.mark.parametrize("op", ["longer", "shorter", "forget"])
def test_a_change_in_the_middle_moves_the_entries_after_it(op: str) -> None:
    log: FinishedLog = FinishedLog()
    model = {key: b"record of " + key for key in (b"A1", b"A2", b"A3", b"A4")}
    for key, rec in model.items():
        finished_log.put(log, key, rec)
    if op == "forget":
        _apply(log, model, "forget", b"A2", b"")
    else:
        _apply(log, model, "put", b"A2", b"r" * (40 if op == "longer" else 2))
    _check(log, model)
