"""The spool when its file or its disk fails: a corrupt file is set aside and a fresh spool
begun; a full disk refuses events (counted, no seq taken) and the spool goes on when space
returns, never corrupt.

"Disk full" as the fault suite makes it (tests/faults/processes.py): ``RLIMIT_FSIZE`` in a
child process, where a write past the limit fails as it would on a full disk. In this
process, SQLite's ``max_page_count`` stops the database from growing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent import status
from agent.app import _prune
from agent.core import AgentCore
from agent.devices.base import UNSTAMPED, DeviceConfig
from agent.spool import Spool, SpoolError, SpoolWriteError
from branchwatch.contract import decode_status
from branchwatch.contract.events import TicketIssued
from branchwatch.contract.seqs import is_new_spool

REPO = Path(__file__).resolve().parents[2]
NOW = 1_795_996_800.0  # 2026-11-30T00:00:00Z
BIG = 6000  # bytes: more than a page, so every event needs new pages


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def append(spool: Spool, size: int = 100) -> int:
    seq = spool.next_seq
    spool.append(seq, NOW, b"x" * size)
    return seq


def integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def stored_seqs(path: Path) -> list[int]:
    db = sqlite3.connect(path)
    try:
        return [int(seq) for (seq,) in db.execute("SELECT seq FROM events ORDER BY seq")]
    finally:
        db.close()


@contextmanager
def database_cannot_grow(spool: Spool) -> Iterator[None]:
    db = spool._db
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {int(pages)}")
    try:
        yield
    finally:
        db.execute("PRAGMA max_page_count = 4294967294")


# -- a corrupt file --------------------------------------------------------------------


def test_a_spool_whose_header_is_overwritten_is_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, clock=clock) as old:
        for _ in range(5):
            append(old)
        old_last, old_session = old.last_seq, old.next_session()
    with path.open("r+b") as db:
        db.write(b"this is no SQLite header")
    damaged = path.read_bytes()
    stale_wal = b"a log that must not be replayed into the new spool"
    Path(f"{path}-wal").write_bytes(stale_wal)
    clock.now += 600
    with caplog.at_level(logging.ERROR), Spool(path, clock=clock) as new:
        assert new.fresh
        assert new.next_seq > old_last and is_new_spool(old_last, new.next_seq)
        assert new.next_session() > old_session
        append(new)
    aside = tmp_path / "spool.db.corrupt-20261130T001000Z"
    assert aside.read_bytes() == damaged  # kept for inspection, untouched
    assert Path(f"{aside}-wal").read_bytes() == stale_wal
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert str(path) in error and str(aside) in error
    assert "not a database" in error and "unsent events" in error
    assert integrity(path) == "ok"
    assert len(stored_seqs(path)) == 1


def test_a_malformed_spool_is_set_aside_with_what_it_loses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as old:
        for _ in range(2000):
            append(old, 200)
        old.mark_sent(old.next_seq - 2000, old.next_seq - 1001)  # 1,000 sent, 1,000 not
    with path.open("r+b") as db:
        db.seek(4096 * 50)
        db.write(b"\xa5" * 4096 * 3)  # three pages of table data overwritten
    with caplog.at_level(logging.ERROR), Spool(path) as new:
        assert new.fresh and new.held == 0
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "malformed" in error
    # What the file's index still says it held unsent, or that it cannot say.
    assert "1000 unsent events" in error or "unsent events (unreadable)" in error
    assert len(list(tmp_path.glob("spool.db.corrupt-*"))) >= 1


def test_a_spool_in_use_is_an_error_not_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path), pytest.raises(SpoolError, match="in use by another agent"):
        Spool(path)
    assert not list(tmp_path.glob("*.corrupt-*"))


# -- a full disk, in this process ------------------------------------------------------


def test_an_event_the_disk_refuses_is_counted_and_takes_no_seq(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        first = append(spool, BIG)
        with database_cannot_grow(spool):
            for _ in range(3):
                with pytest.raises(SpoolWriteError, match="database or disk is full"):
                    append(spool, BIG)
            assert spool.refused == 3
            assert spool.next_seq == first + 1 and spool.held == 1 and spool.depth == 1
            spool.mark_sent(first, first)  # fits in the pages it has
        assert append(spool, BIG) == first + 1  # space is back: the next seq, no gap
        assert spool.depth == 1
    with Spool(path) as again:
        assert again.refused == 3  # persisted with the first write the disk took
    assert stored_seqs(path) == [first, first + 1]
    assert integrity(path) == "ok"


# -- a full disk, as the fault suite makes it ------------------------------------------

FULL_DISK_RUN = """
import json, os, resource, sys
from agent.spool import Spool, SpoolWriteError

path = sys.argv[1]
out = {}

def grows(size=300):
    seq = spool.next_seq
    try:
        spool.append(seq, 1796054400.0, b"x" * size)
        return True
    except SpoolWriteError as exc:
        out["error"] = str(exc)
        assert spool.next_seq == seq, "a refused event took its seq"
        return False

def limit(size):
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

spool = Spool(path)
for _ in range(200):
    grows()
out["before"] = spool.last_seq
sessions = [spool.next_session()]
limit(os.path.getsize(path))  # no file of ours may grow: the disk is full
stored = [grows() for _ in range(2000)]
out["stored_while_full"], out["refused"] = stored.count(True), spool.refused
spool.mark_sent(1, spool.last_seq)  # the broker acknowledged all: kept if not written
out["depth_while_full"] = spool.depth
out["unsent_batch_while_full"] = spool.unsent_batch() is not None
try:
    sessions.append(spool.next_session())
except SpoolWriteError:
    out["session_refused"] = True
try:
    spool.prune()
except SpoolWriteError:
    out["prune_refused"] = True
limit(resource.RLIM_INFINITY)  # space returns
out["stored_after"] = sum(grows() for _ in range(10))
out["depth_after"] = spool.depth
out["last"] = spool.last_seq
spool.close()
again = Spool(path)
out["refused_reopened"], out["depth_reopened"] = again.refused, again.depth
out["session_reopened"] = again.next_session()
out["sessions"] = sessions
again.close()
print(json.dumps(out))
"""


def run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_full_disk_refuses_events_and_the_spool_goes_on_when_space_returns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    child = run_child(FULL_DISK_RUN, str(path))
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout)
    assert out["refused"] > 0 and "cannot write spool" in out["error"]
    assert out["stored_while_full"] + out["refused"] == 2000
    assert out["depth_while_full"] == 0 and not out["unsent_batch_while_full"]
    assert out["stored_after"] == 10 and out["depth_after"] == 10
    assert out["refused_reopened"] == out["refused"]
    assert out["depth_reopened"] == 10  # the acknowledgements were written in the end
    assert out["session_reopened"] > max(out["sessions"])  # no session number reused
    # Every event it took is there once, in an unbroken run of seqs: no gap, no duplicate.
    seqs = stored_seqs(path)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == out["last"] and len(seqs) == 200 + out["stored_while_full"] + 10
    assert integrity(path) == "ok"


OPEN_ON_A_FULL_DISK = """
import resource, sys
from agent.spool import Spool, SpoolCorruptError, SpoolError

resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
for path in sys.argv[1:]:
    try:
        Spool(path)
    except SpoolCorruptError as exc:
        print("corrupt?!", exc)
    except SpoolError as exc:
        print(exc)
"""


def test_a_disk_too_full_to_open_the_spool_is_a_clear_error(tmp_path: Path) -> None:
    existing = tmp_path / "old.db"
    with Spool(existing) as spool:
        append(spool)
        kept = spool.last_seq
    child = run_child(OPEN_ON_A_FULL_DISK, str(tmp_path / "new.db"), str(existing))
    assert child.returncode == 0 and not child.stderr, child.stderr
    new, old = child.stdout.splitlines()
    assert new.startswith(f"cannot open spool {tmp_path / 'new.db'}: disk I/O error"), new
    assert old.startswith(f"cannot open spool {existing}: disk I/O error"), old
    assert not list(tmp_path.glob("*.corrupt-*"))
    assert stored_seqs(existing) == [kept]


# -- what the agent does meanwhile -----------------------------------------------------


def test_the_agent_refuses_events_on_a_full_disk_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path / "spool.db") as spool:
        core = AgentCore((DeviceConfig(id="q1", protocol="none"),), spool, {})
        slot = core.slots["q1"]

        def emit() -> None:
            slot.emit(TicketIssued(**UNSTAMPED, ts=slot.now(), ticket="A001", service="cash"))

        emit()
        caplog.set_level(logging.INFO)
        with database_cannot_grow(spool):
            for _ in range(1000):  # until the last page is full
                emit()
                if spool.refused:
                    break
            core.status_changed.clear()
            stored = spool.held
            for _ in range(20):
                emit()
            assert spool.held == stored and spool.refused == 21
            assert core.status_changed.is_set()  # the refused count goes out in the status
            online = decode_status(status.online(core, 1))
            assert online.spool is not None and online.spool.refused == 21
            assert not core.failed.is_set() and core.failure is None  # the agent goes on
        emit()  # space is back
        assert spool.held == stored + 1
    refusals = [r.getMessage() for r in caplog.records if "event refused" in r.getMessage()]
    assert len(refusals) == 1 and "database or disk is full" in refusals[0]
    assert "spool stores events again (21 refused so far)" in caplog.text
    seqs = stored_seqs(tmp_path / "spool.db")
    assert seqs == list(range(seqs[0], seqs[0] + stored + 1))  # no gap where it refused


def test_a_spool_going_corrupt_under_a_running_agent_is_a_spool_error(tmp_path: Path) -> None:
    """Reads (the publisher's batches, the status's oldest event, replays) raise the
    spool's own error, which stops the agent with one clear line, not a sqlite3
    traceback; the next start sets the file aside."""
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        for _ in range(2000):
            append(spool, 200)
        spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        spool._db.execute("PRAGMA cache_size = 1")  # read pages from the file again
        with path.open("r+b") as db:
            db.seek(4096 * 2)
            db.write(b"\xa5" * 4096 * 40)
        with pytest.raises(SpoolError, match=f"cannot read spool {path}|is corrupt") as raised:
            for batch in spool.held_batches(1, spool.last_seq):
                assert batch.last_seq <= spool.last_seq
            spool.unsent_batch()
            spool.oldest_unsent_ts()
        assert isinstance(raised.value.__cause__, sqlite3.Error)


def test_pruning_a_corrupt_spool_stops_the_agent(tmp_path: Path) -> None:
    """The prune task does not end unseen: it stops the agent with the spool's error."""
    clock = Clock()
    path = tmp_path / "spool.db"
    with Spool(path, clock=clock, retention_seconds=60) as spool:
        for _ in range(2000):
            append(spool, 200)
        spool.mark_sent(1 if spool.last_seq < 2000 else spool.last_seq - 1999, spool.last_seq)
        spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        spool._db.execute("PRAGMA cache_size = 1")
        with path.open("r+b") as db:
            db.seek(4096 * 2)
            db.write(b"\xa5" * 4096 * 40)
        clock.now += 3600
        core = AgentCore((DeviceConfig(id="q1", protocol="none"),), spool, {})

        async def run() -> None:
            await asyncio.wait_for(_prune(core), 10)

        asyncio.run(run())
        assert core.failed.is_set()
        assert isinstance(core.failure, SpoolError)
