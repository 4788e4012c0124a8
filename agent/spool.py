"""The agent's durable event spool: SQLite in WAL mode.

Every event is written here, with its ``seq``, before it is published; it is
marked sent on PUBACK and kept for the retention window to answer ``replay``.

Durability: ``synchronous=NORMAL``. In WAL mode a commit is in the OS page
cache when it returns, so a crash of the agent (``kill -9``) loses nothing;
only a power cut can roll back the last commits. FULL would fsync on every
event (milliseconds each on a branch PC's disk, a ceiling of a few hundred
events/s). What a power cut must never do is make the agent *reuse* a seq
or a session number (the collector would drop the new events as duplicates,
or ignore the new online status), so both come from ranges reserved with an
fsync'ed commit (``synchronous=FULL`` for that one transaction): after a
power cut the agent starts above anything it may have used. The cost is one
fsync per :data:`SEQ_BLOCK` events and one per connection.

A fresh spool (the file created empty) does not start at seq 1 and session 1
but above anything an earlier spool of the agent may have used
(:mod:`branchwatch.contract.seqs`): the collector would drop reused seqs as
duplicates. That is what makes it safe to set a corrupt spool aside at start
and begin again (:mod:`agent.spoolfiles`).

A write the disk refuses (full, failing) changes nothing: an event that cannot
be stored is refused and counted (:attr:`Spool.refused`), its seq not taken, so
the collector sees neither a gap nor a duplicate; acknowledgements that cannot
be written are kept in memory and written with the next write that succeeds.

Single writer: a lock file next to the database stops a second agent from
using the same spool.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from agent.errors import AgentError
from agent.spoolfiles import (
    LockFile,
    Transaction,
    boot_id,
    has_sqlite_header,
    is_corrupt,
    set_aside,
)
from branchwatch.agentlink import Batch, first_batch
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.contract.seqs import fresh_seq_base, fresh_session_base

log = logging.getLogger(__name__)

# Small: a jump after a suspected power cut shows as up to this many "missing" events.
SEQ_BLOCK: Final = 1_000
SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    added REAL NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_unsent ON events (seq) WHERE sent = 0;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolError(AgentError):
    """The spool database cannot be opened, read or written."""


class SpoolCorruptError(SpoolError):
    """SQLite says the file is not a database or is malformed."""


class SpoolWriteError(SpoolError):
    """The disk refused a write (full, failing): nothing changed; try again later."""


class Spool:
    """Not thread-safe: the agent uses it from its event loop thread only."""

    def __init__(
        self,
        path: str | Path,
        max_events: int = 1_000_000,
        max_bytes: int = 512 * 1024 * 1024,
        retention_seconds: float = 86_400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.max_events, self.max_bytes = max_events, max_bytes
        self.retention_seconds = retention_seconds
        self._clock = clock
        # Acknowledged up to this seq but not yet written (the disk refused), 0: none; and
        # how many events still unsent on disk that covers. Acknowledgements come in seq
        # order, so one bound says it all.
        self._acked_unwritten = 0
        self._acked_unwritten_count = 0
        self._lock_file = self._take_lock()
        try:
            try:
                if not has_sqlite_header(self.path):
                    raise SpoolCorruptError(
                        f"spool {self.path} is corrupt (file is not a database)"
                    )
                self._open()
            except SpoolCorruptError as exc:
                self._set_aside(exc)
                self._open()
        except BaseException:
            self._lock_file.close()
            raise

    def _take_lock(self) -> LockFile:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot create spool {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise SpoolError(f"spool {self.path} is in use by another agent") from exc
        return LockFile(fd)

    def _open(self) -> None:
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            # The schema and the first reads touch every page of the events table: a
            # malformed file shows here (a PRAGMA quick_check would read it all once more).
            self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._load_meta()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "open") from exc
            raise

    def _set_aside(self, exc: SpoolCorruptError) -> None:
        try:
            aside, unsent = set_aside(self.path, self._clock())
        except OSError as move:
            raise SpoolError(f"{exc}; cannot move it aside: {move.strerror or move}") from move
        lost = "its unsent events (unreadable)" if unsent is None else f"{unsent} unsent events"
        log.error("%s: moved to %s, starting a fresh spool; lost: %s", exc, aside, lost)

    def _load_meta(self) -> None:
        rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        raw: dict[str, float] = {str(key): value for key, value in rows}
        stamp = raw.pop("stamp", None)
        meta = {key: int(value) for key, value in raw.items()}
        if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise SpoolError(f"spool {self.path} has schema {meta['schema']}, not {SCHEMA_VERSION}")
        max_seq = self._db.execute("SELECT max(seq) FROM events").fetchone()[0]
        # Created empty just now (or before its first commit): start above any older spool.
        self.fresh = not rows and max_seq is None
        if self.fresh:
            now = self._clock()
            meta.update(last_seq=fresh_seq_base(now), session=fresh_session_base(now))
        self._last_seq: int = max(meta.get("last_seq", 0), int(max_seq or 0))
        boot = boot_id()
        if not meta.get("clean", 1) and meta.get("boot") != boot:
            # Not closed cleanly and the machine rebooted since: a power cut may have
            # rolled back commits, so continue above the fsync'ed ceiling. (After a
            # mere crash of the agent the OS kept every commit: no jump.)
            self._last_seq = max(self._last_seq, meta.get("seq_reserved", 0))
        self._seq_reserved = self._last_seq
        self.dropped = meta.get("dropped", 0)
        self.refused = self._refused_saved = meta.get("refused", 0)
        self.session = meta.get("session", 0)
        # The newest time the agent's event clock handed out (see agent.eventclock).
        self.stamp: float | None = None if stamp is None else float(stamp)
        count, size = self._db.execute(
            "SELECT count(*), total(length(payload)) FROM events"
        ).fetchone()
        self._count, self._bytes = int(count), int(size)
        self._depth = int(
            self._db.execute("SELECT count(*) FROM events WHERE sent = 0").fetchone()[0]
        )
        durable = {"schema": SCHEMA_VERSION, "clean": 0, "boot": boot}
        if self.fresh:
            durable.update(last_seq=self._last_seq, seq_reserved=self._last_seq)
            durable.update(session=self.session)
        self._durable_meta(**durable)

    # -- writing -----------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The seq the next :meth:`append` will take."""
        return self._last_seq + 1

    def append(self, seq: int, ts: float, payload: bytes, stamp: float | None = None) -> None:
        """Store one encoded event; ``seq`` must be :attr:`next_seq` (it is in the payload).

        ``stamp``: the agent's event clock now, kept so that a restart resumes from it.
        A write the disk refuses raises :class:`SpoolWriteError` with the event counted
        in :attr:`refused` and nothing else changed: ``seq`` is still :attr:`next_seq`.
        """
        if seq != self._last_seq + 1:
            raise SpoolError(f"append out of order: seq {seq}, expected {self._last_seq + 1}")
        before = (self._last_seq, self._count, self._bytes, self._depth, self.dropped)
        try:
            if seq > self._seq_reserved:
                self._durable_meta(seq_reserved=seq + SEQ_BLOCK)
                self._seq_reserved = seq + SEQ_BLOCK
            with self._transaction():
                marked = self._write_marks()
                self._db.execute(
                    "INSERT INTO events (seq, ts, added, payload) VALUES (?, ?, ?, ?)",
                    (seq, ts, self._clock(), payload),
                )
                self._set_meta(last_seq=seq)
                if stamp is not None:
                    self._set_meta(stamp=stamp)
                if self.refused != self._refused_saved:
                    self._set_meta(refused=self.refused)
                self._last_seq = seq
                self._count += 1
                self._bytes += len(payload)
                self._depth += 1 - marked
                self._enforce_bounds()
        except (sqlite3.Error, SpoolWriteError) as exc:
            self._last_seq, self._count, self._bytes, self._depth, self.dropped = before
            error = self._error(exc, "write") if isinstance(exc, sqlite3.Error) else exc
            if isinstance(error, SpoolWriteError):
                self.refused += 1
            if error is exc:
                raise
            raise error from exc
        self._acked_unwritten = self._acked_unwritten_count = 0
        self._refused_saved = self.refused
        if stamp is not None:
            self.stamp = stamp

    def _enforce_bounds(self) -> None:
        """Drop the oldest events until within bounds; unsent ones are counted as dropped."""
        if self._count <= self.max_events and self._bytes <= self.max_bytes:
            return
        dropped_now = 0
        rows = self._db.execute("SELECT seq, sent, length(payload) FROM events ORDER BY seq")
        cut = None
        for seq, sent, size in rows:
            if self._count <= self.max_events and self._bytes <= self.max_bytes:
                break
            cut = seq
            self._count -= 1
            self._bytes -= size
            if not sent:
                dropped_now += 1
        rows.close()
        if cut is None:
            return
        self._db.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        if dropped_now:
            self.dropped += dropped_now
            self._depth -= dropped_now
            self._set_meta(dropped=self.dropped)

    def mark_sent(self, first_seq: int, last_seq: int) -> None:
        """The broker acknowledged (PUBACK) the events ``first_seq..last_seq``.

        If the disk refuses the write, the range is kept and written with the next
        write that succeeds; meanwhile it counts as sent here (not resent, not in depth).
        """
        try:
            with self._transaction():
                marked = self._write_marks()
                marked += self._db.execute(
                    "UPDATE events SET sent = 1 WHERE seq BETWEEN ? AND ? AND sent = 0",
                    (first_seq, last_seq),
                ).rowcount
        except sqlite3.Error as exc:
            self._keep_unwritten(exc, last_seq)
            return
        self._depth -= marked
        self._acked_unwritten = self._acked_unwritten_count = 0

    def flush_marks(self) -> None:
        """Write the acknowledgements kept in memory, if any and if the disk takes them."""
        if not self._acked_unwritten:
            return
        try:
            with self._transaction():
                marked = self._write_marks()
        except sqlite3.Error as exc:
            self._keep_unwritten(exc, self._acked_unwritten)
            return
        self._depth -= marked
        self._acked_unwritten = self._acked_unwritten_count = 0

    def _keep_unwritten(self, exc: sqlite3.Error, last_seq: int) -> None:
        error = self._error(exc, "write")
        if isinstance(error, SpoolCorruptError):
            raise error from exc
        self._acked_unwritten = max(self._acked_unwritten, last_seq)
        (count,) = self._db.execute(
            "SELECT count(*) FROM events WHERE sent = 0 AND seq <= ?", (self._acked_unwritten,)
        ).fetchone()
        self._acked_unwritten_count = int(count)

    def _write_marks(self) -> int:
        """In a transaction: write the acknowledgements kept; return how many were unsent."""
        if not self._acked_unwritten:
            return 0
        cursor = self._db.execute(
            "UPDATE events SET sent = 1 WHERE sent = 0 AND seq <= ?", (self._acked_unwritten,)
        )
        return cursor.rowcount

    def next_session(self) -> int:
        """+1 on the persisted connection counter, fsync'ed before it is used in a will.

        Raises :class:`SpoolWriteError` when the disk refuses: a session number that
        is not on disk could be used again after a restart.
        """
        self._durable_meta(session=self.session + 1)
        self.session += 1
        return self.session

    def prune(self) -> int:
        """Delete sent events older than the retention window; return how many."""
        self.flush_marks()
        horizon = self._clock() - self.retention_seconds
        try:
            with self._transaction():
                size = self._db.execute(
                    "SELECT count(*), total(length(payload)) FROM events"
                    " WHERE sent = 1 AND added < ?",
                    (horizon,),
                ).fetchone()
                self._db.execute("DELETE FROM events WHERE sent = 1 AND added < ?", (horizon,))
        except sqlite3.Error as exc:
            raise self._error(exc, "write") from exc
        self._count -= int(size[0])
        self._bytes -= int(size[1])
        return int(size[0])

    # -- reading -----------------------------------------------------------

    @property
    def depth(self) -> int:
        """Events not yet acknowledged by the broker."""
        return self._depth - self._acked_unwritten_count

    @property
    def held(self) -> int:
        """Events in the spool (unsent + sent kept for replay)."""
        return self._count

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _oldest_unsent_seq(self) -> int | None:
        """Not acknowledged, even in memory (an acknowledgement the disk refused counts)."""
        (row,) = self._read(
            "SELECT min(seq) FROM events WHERE sent = 0 AND seq > ?", (self._acked_unwritten,)
        )
        return None if row[0] is None else int(row[0])

    def oldest_unsent_ts(self) -> float | None:
        seq = self._oldest_unsent_seq()
        if seq is None:
            return None
        (row,) = self._read("SELECT ts FROM events WHERE seq = ?", (seq,))
        return float(row[0])

    def last_sent_seq(self) -> int:
        """Highest acknowledged seq. Events are acknowledged in seq order, so that is the
        seq below the oldest unsent one (an index lookup, not a scan of the sent ones)."""
        seq = self._oldest_unsent_seq()
        return self._last_seq if seq is None else seq - 1

    def unsent_batch(
        self,
        after_seq: int = 0,
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> Batch | None:
        """The oldest unsent events with seq > ``after_seq``, as one payload."""
        rows = self._read(
            "SELECT seq, payload FROM events WHERE sent = 0 AND seq > ? ORDER BY seq LIMIT ?",
            (max(after_seq, self._acked_unwritten), max_events),
        )
        return first_batch(rows, max_events, max_bytes)

    def held_batches(
        self, from_seq: int, to_seq: int, max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> Iterator[Batch]:  # fmt: skip
        """Every held event (sent or not) with ``from_seq <= seq <= to_seq``, in batches."""
        after = from_seq - 1
        while True:
            rows = self._read(
                "SELECT seq, payload FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, to_seq, max_events),
            )
            batch = first_batch(rows, max_events, max_bytes)
            if batch is None:
                return
            yield batch
            after = batch.last_seq

    def oldest_held_seq(self) -> int | None:
        (row,) = self._read("SELECT min(seq) FROM events")
        return None if row[0] is None else int(row[0])

    # -- plumbing ----------------------------------------------------------

    def _transaction(self) -> Transaction:
        return Transaction(self._db)

    def _read(self, sql: str, parameters: tuple[int, ...] = ()) -> list[tuple[Any, ...]]:
        """A query's rows; SQLite's error as ours. A file gone corrupt under a running
        agent must stop it with a clear error (it is set aside at the next start), not
        end the publisher with a raw sqlite3 traceback."""
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "read") from exc

    def _set_meta(self, **values: float) -> None:
        for key, value in values.items():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _durable_meta(self, **values: int) -> None:
        """Write meta values with an fsync'ed commit (see the module docstring)."""
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                with self._transaction():
                    self._set_meta(**values)
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise self._error(exc, "write") from exc

    def _error(self, exc: sqlite3.Error, doing: str) -> SpoolError:
        """SQLite's error as ours: the file corrupt, or the disk refusing a write."""
        if is_corrupt(exc):
            return SpoolCorruptError(f"spool {self.path} is corrupt ({exc})")
        if doing in ("open", "read"):
            return SpoolError(f"cannot {doing} spool {self.path}: {exc}")
        return SpoolWriteError(f"cannot write spool {self.path}: {exc}")

    def close(self) -> None:
        """Write what is kept in memory and mark the spool closed cleanly, if the disk lets
        us (if not: a power cut before the next start makes seqs jump a block, no more)."""
        try:
            self.flush_marks()
            self._durable_meta(clean=1, refused=self.refused)
        except SpoolError as exc:  # full or corrupt: the error that stopped us is told
            log.warning("%s; closing it as it is", exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._lock_file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
