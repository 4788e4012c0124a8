"""collector.memory: freed malloc memory given back to the system (glibc)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from collector import memory
from tests.support import wait_until

glibc_only = pytest.mark.skipif(not memory.supported(), reason="needs glibc's malloc")

PIECES = 4000  # ~40 MiB of 10 KiB pieces, as a snapshot of 4,000 branches makes
PIECE = 10 * 1024


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def free_pieces_on_a_thread() -> list[bytes]:
    """Allocate and free ~40 MiB of 10 KiB pieces on a thread of its own (a snapshot's
    pattern), keeping a few small ones made after them, so the freed memory is not at
    the top of the heap and malloc keeps it. Returns the kept ones (hold them)."""
    kept: list[bytes] = []

    def work() -> None:
        pieces = [bytes([i % 251]) * PIECE for i in range(PIECES)]
        kept.extend(bytes(PIECE) for _ in range(4))  # above the pieces
        del pieces

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return kept


@glibc_only
def test_trim_gives_freed_pieces_back() -> None:
    memory.trim()
    kept = free_pieces_on_a_thread()
    before = rss_kib()
    assert memory.trim()
    after = rss_kib()
    # Most of the 40 MiB was resident though free; a trim returns it.
    assert before - after > PIECES * PIECE // 1024 // 2, (before, after)
    assert len(kept) == 4


@glibc_only
def test_trimmer_thread_trims_until_stopped() -> None:
    trimmer = memory.HeapTrimmer(interval=0.05).start()
    try:
        free_pieces_on_a_thread()
        wait_until(lambda: trimmer.trims >= 1, 10.0, "a trim that gave memory back")
    finally:
        trimmer.stop()
    assert not any(t.name == "collector-trim" for t in threading.enumerate())


def test_trimmer_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        memory.HeapTrimmer(interval=0)


def test_no_glibc_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_LIBC", None)
    assert not memory.supported()
    assert not memory.trim()
    trimmer = memory.HeapTrimmer().start()
    assert not any(t.name == "collector-trim" for t in threading.enumerate())
    trimmer.stop()
