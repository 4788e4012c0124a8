"""The collector's heap handed back to the system (glibc only; a no-op elsewhere).

Python keeps objects of up to 512 bytes in its own arenas; everything larger (a
branch's snapshot piece, a payload, a long label text) comes from the C library's
``malloc``. glibc returns freed memory to the system only from the top of a heap
(each thread that allocates gets a heap of its own, an arena). Measured
on a 5,000-branch region (bench.region_scrape), when a snapshot still held every
branch's piece (~10 KiB a branch) until it was written: every 15 s the maintenance
thread's arena grew to ~70 MiB and then stayed there, nearly all of it free but
resident (14 KiB a branch). Snapshots are now written piece by piece, but renders,
rebuilds and payloads free large blocks the same way. ``malloc_trim(0)`` gives back every
whole free page of every arena (~4 ms for 50-70 MiB, ~0.01 ms when there is
nothing to give back), so :class:`HeapTrimmer` calls it every second.

Capping the arenas at two (``mallopt(M_ARENA_MAX, 2)``) was measured too and left
out: with the trims, the median RSS at 5,000 branches was the same (241 MiB either
way), and the threads would share one arena's lock for nothing.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Final

# Seconds between trims: a snapshot's freed pieces stay resident at most this long.
TRIM_INTERVAL: Final = 1.0


def _glibc() -> ctypes.CDLL | None:
    """The running process's C library, when it is glibc (else None: nothing to tune)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):  # not a GNU C library
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC: Final = _glibc()


def supported() -> bool:
    """Whether this process's ``malloc`` can be tuned (glibc)."""
    return _LIBC is not None


def trim() -> bool:
    """Give the free pages of every malloc arena back to the system; True when some were."""
    if _LIBC is None:
        return False
    # ctypes releases the interpreter for the call: other threads run meanwhile.
    return bool(_LIBC.malloc_trim(0))


class HeapTrimmer:
    """A daemon thread that calls :func:`trim` every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError("the trim interval must be > 0")
        self.interval = interval
        self.trims = 0  # trims that gave memory back
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HeapTrimmer:
        if _LIBC is None or self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="collector-trim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if trim():
                self.trims += 1
