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

Single writer: a lock file next to the database stops a second agent from
using the same spool.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from agent.errors import AgentError
from branchwatch.agentlink import Batch, first_batch
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES

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
    """The spool database cannot be opened or written."""


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
        self._lock_file = self._take_lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._load_meta()
        except sqlite3.Error as exc:
            self._lock_file.close()
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc

    def _take_lock(self) -> _LockFile:
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
        return _LockFile(fd)

    def _load_meta(self) -> None:
        rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        meta: dict[str, int] = {str(key): int(value) for key, value in rows}
        if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise SpoolError(f"spool {self.path} has schema {meta['schema']}, not {SCHEMA_VERSION}")
        max_seq = self._db.execute("SELECT max(seq) FROM events").fetchone()[0]
        self._last_seq: int = max(meta.get("last_seq", 0), int(max_seq or 0))
        boot = _boot_id()
        if not meta.get("clean", 1) and meta.get("boot") != boot:
            # Not closed cleanly and the machine rebooted since: a power cut may have
            # rolled back commits, so continue above the fsync'ed ceiling. (After a
            # mere crash of the agent the OS kept every commit: no jump.)
            self._last_seq = max(self._last_seq, meta.get("seq_reserved", 0))
        self._seq_reserved = self._last_seq
        self.dropped = meta.get("dropped", 0)
        self.session = meta.get("session", 0)
        count, size = self._db.execute(
            "SELECT count(*), total(length(payload)) FROM events"
        ).fetchone()
        self._count, self._bytes = int(count), int(size)
        self._depth = int(
            self._db.execute("SELECT count(*) FROM events WHERE sent = 0").fetchone()[0]
        )
        self._durable_meta(schema=SCHEMA_VERSION, clean=0, boot=boot)

    # -- writing -----------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The seq the next :meth:`append` will take (the first event gets 1)."""
        return self._last_seq + 1

    def append(self, seq: int, ts: float, payload: bytes) -> None:
        """Store one encoded event; ``seq`` must be :attr:`next_seq` (it is in the payload)."""
        if seq != self._last_seq + 1:
            raise SpoolError(f"append out of order: seq {seq}, expected {self._last_seq + 1}")
        if seq > self._seq_reserved:
            self._seq_reserved = seq + SEQ_BLOCK
            self._durable_meta(seq_reserved=self._seq_reserved)
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO events (seq, ts, added, payload) VALUES (?, ?, ?, ?)",
                    (seq, ts, self._clock(), payload),
                )
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (seq,))
                self._last_seq = seq
                self._count += 1
                self._bytes += len(payload)
                self._depth += 1
                self._enforce_bounds()
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc

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
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (self.dropped,))

    def mark_sent(self, first_seq: int, last_seq: int) -> None:
        """The broker acknowledged (PUBACK) the events ``first_seq..last_seq``."""
        try:
            cursor = self._db.execute(
                "UPDATE events SET sent = 1 WHERE seq BETWEEN ? AND ? AND sent = 0",
                (first_seq, last_seq),
            )
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc
        self._depth -= cursor.rowcount

    def next_session(self) -> int:
        """+1 on the persisted connection counter, fsync'ed before it is used in a will."""
        self.session += 1
        self._durable_meta(session=self.session)
        return self.session

    def prune(self) -> int:
        """Delete sent events older than the retention window; return how many."""
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
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc
        self._count -= int(size[0])
        self._bytes -= int(size[1])
        return int(size[0])

    # -- reading -----------------------------------------------------------

    @property
    def depth(self) -> int:
        """Events not yet acknowledged by the broker."""
        return int(self._depth)

    @property
    def held(self) -> int:
        """Events in the spool (unsent + sent kept for replay)."""
        return self._count

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def oldest_unsent_ts(self) -> float | None:
        row = self._db.execute("SELECT min(seq) FROM events WHERE sent = 0").fetchone()
        if row[0] is None:
            return None
        ts: float = self._db.execute("SELECT ts FROM events WHERE seq = ?", row).fetchone()[0]
        return ts

    def last_sent_seq(self) -> int:
        """Highest acknowledged seq. Events are acknowledged in seq order, so that is the
        seq below the oldest unsent one (an index lookup, not a scan of the sent ones)."""
        row = self._db.execute("SELECT min(seq) FROM events WHERE sent = 0").fetchone()
        return self._last_seq if row[0] is None else int(row[0]) - 1

    def unsent_batch(
        self,
        after_seq: int = 0,
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> Batch | None:
        """The oldest unsent events with seq > ``after_seq``, as one payload."""
        rows = self._db.execute(
            "SELECT seq, payload FROM events WHERE sent = 0 AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, max_events),
        ).fetchall()
        return first_batch(rows, max_events, max_bytes)

    def held_batches(
        self, from_seq: int, to_seq: int, max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> Iterator[Batch]:  # fmt: skip
        """Every held event (sent or not) with ``from_seq <= seq <= to_seq``, in batches."""
        after = from_seq - 1
        while True:
            rows = self._db.execute(
                "SELECT seq, payload FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (after, to_seq, max_events),
            ).fetchall()
            batch = first_batch(rows, max_events, max_bytes)
            if batch is None:
                return
            yield batch
            after = batch.last_seq

    def oldest_held_seq(self) -> int | None:
        row = self._db.execute("SELECT min(seq) FROM events").fetchone()
        return None if row[0] is None else int(row[0])

    # -- plumbing ----------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _durable_meta(self, **values: int) -> None:
        """Write meta values with an fsync'ed commit (see the module docstring)."""
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                for key, value in values.items():
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write spool {self.path}: {exc}") from exc

    def close(self) -> None:
        try:
            self._durable_meta(clean=1)
            self._db.close()
        finally:
            self._lock_file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _boot_id() -> int:
    """This boot of the machine (Linux), as an integer; 0 where unknown."""
    try:
        return int(
            Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:15].replace("-", ""), 16
        )
    except (OSError, ValueError):
        return 0


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


class _LockFile:
    """An flock'ed file descriptor, released on close (or when the process dies)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
