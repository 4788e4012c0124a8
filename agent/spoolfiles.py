"""The spool's files on disk and its SQLite plumbing: telling corruption from other errors,
setting a corrupt spool aside, transactions, the lock file, the boot id.

A spool SQLite cannot read would stop the agent at every start until someone moved it,
its devices unread all the while. Its unsent events are lost either way (nothing else
holds them), so the agent moves it aside for inspection and starts a fresh spool, whose
seqs start above the old one's (:mod:`branchwatch.contract.seqs`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path
from typing import Final

# SQLite's primary result codes for a file that is not (or no longer) a database.
_SQLITE_CORRUPT: Final = 11
_HEADER: Final = b"SQLite format 3\x00"
_SQLITE_NOTADB: Final = 26
# The write-ahead log and its index go with the database: a stale log left next to a
# fresh database would be replayed into it.
_COMPANIONS: Final = ("-wal", "-shm")


def is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused the file itself (not a database, malformed), not the disk."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def has_sqlite_header(path: Path) -> bool:
    """Whether the file at ``path`` starts as a database does (or is absent or empty: new).

    Checked before SQLite opens it: on closing a file it cannot read, SQLite deletes the
    write-ahead log next to it, which may hold the last events someone could recover.
    """
    try:
        with path.open("rb") as file:
            start = file.read(len(_HEADER))
    except FileNotFoundError:
        return True
    return not start or start == _HEADER


def aside_path(path: Path, now: float) -> Path:
    """``<name>.corrupt-<UTC time>`` next to ``path``, not yet taken by an earlier one."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{aside}{suffix}").exists() for suffix in ("", *_COMPANIONS)):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return aside


def unsent_events(path: Path) -> int | None:
    """How many unsent events the file at ``path`` still shows, or None if it cannot say."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return int(db.execute("SELECT count(*) FROM events WHERE sent = 0").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()


def set_aside(path: Path, now: float) -> tuple[Path, int | None]:
    """Move the database at ``path`` and its companions aside; return where, and how many
    unsent events it held (None: unreadable).

    Raises OSError when a file cannot be moved (the caller says so and stops).
    """
    # A file without a header cannot be counted (and SQLite is kept away from its log).
    unsent = unsent_events(path) if has_sqlite_header(path) else None
    aside = aside_path(path, now)
    # Companions first: a crash halfway then leaves the database, not a stray log, in place.
    for suffix in (*_COMPANIONS, ""):
        try:
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
        except FileNotFoundError:
            continue
    return aside, unsent


def boot_id() -> int:
    """This boot of the machine (Linux), as an integer; 0 where unknown."""
    try:
        return int(
            Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:15].replace("-", ""), 16
        )
    except (OSError, ValueError):
        return 0


class Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on an error (its own included)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (a full disk among them): a second
        # ROLLBACK would fail and hide the error that matters.
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


class LockFile:
    """An flock'ed file descriptor, released on close (or when the process dies)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
