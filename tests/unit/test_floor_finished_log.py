"""The finished-ticket log against a plain ordered dict: same lookups, same order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.floor import finished_log
from collector.floor.branch import FinishedLog

IDS = st.sampled_from(["A1", "B17", "C" * 32, "W-9.z"])
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
        st.tuples(st.sampled_from(["oldest", "restore", "clear"]), st.just(""), st.just(b"")),
    ),
    max_size=60,
)
Model = dict[str, bytes]


def _apply(log: FinishedLog, model: Model, op: str, key: str, rec: bytes) -> None:
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
        model[key] = rec
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


def _check(log: FinishedLog, model: Model) -> None:
    held = [(key.encode(), rec) for key, rec in model.items()]
    assert list(finished_log.oldest_first(log)) == held
    assert list(finished_log.newest_first(log)) == held[::-1]
    assert log.count == len(model) == len(log.index)
    for key, rec in model.items():
        pos = finished_log.find(log, key)
        assert pos is not None and finished_log.record_at(log, pos) == rec
    for key in {"A1", "A2", "B17", "nope"} - set(model):
        assert finished_log.find(log, key) is None


@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_the_log_holds_what_a_dict_would(ops: list[tuple[str, str, bytes]]) -> None:
    log, model = FinishedLog(), Model()
    for op, key, rec in ops:
        _apply(log, model, op, key, rec)
        _check(log, model)


@settings(max_examples=100, deadline=None)
@given(ops=OPS)
def test_ids_whose_hashes_collide_are_told_apart(ops: list[tuple[str, str, bytes]]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finished_log, "_hash", lambda _: 7)
        log, model = FinishedLog(), Model()
        for op, key, rec in ops:
            _apply(log, model, op, key, rec)
            _check(log, model)


@pytest.mark.parametrize("op", ["longer", "shorter", "forget"])
def test_a_change_in_the_middle_moves_the_entries_after_it(op: str) -> None:
    log, model = FinishedLog(), {key: b"record of " + key.encode() for key in ("A1", "A2", "A3")}
    for key, rec in model.items():
        finished_log.put(log, key, rec)
    if op == "forget":
        _apply(log, model, "forget", "A2", b"")
    else:
        _apply(log, model, "put", "A2", b"r" * (40 if op == "longer" else 2))
    _check(log, model)


def test_offsets_start_again_before_they_pass_32_bits() -> None:
    log = FinishedLog()
    finished_log.put(log, "A1", b"r1")
    log.base = (1 << 32) - 100  # as after ~4 GiB of entries without a new day
    finished_log._index_entries(log)
    assert finished_log.find(log, "A1") == 0
    finished_log.put(log, "A2", b"r2")
    assert log.base == 0
    _check(log, {"A1": b"r1", "A2": b"r2"})


def test_what_an_entry_cannot_hold() -> None:
    assert finished_log.fits("C" * 32, b"r" * 220)
    assert not finished_log.fits("C" * 32, b"r" * 221)  # its length is one byte
    assert not finished_log.fits("", b"r")
    assert not finished_log.fits("é", b"r")  # not an id the contract allows
