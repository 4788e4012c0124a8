"""Snapshot files on disk: written atomically, read back on start.

The format belongs to the store (:meth:`collector.store.Store.snapshot`);
this module only makes sure a crash mid-write never leaves a torn file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from collector.errors import CollectorConfigError, CollectorError

log = logging.getLogger(__name__)

SNAPSHOT_NAME: Final = "collector-snapshot.json"
# A snapshot comes as one chunk a branch (a few KiB each): gathered into writes this
# large, the file takes a few dozen system calls, not thousands.
WRITE_BUFFER: Final = 1 << 20


class StateDirError(CollectorError):
    """A snapshot cannot be read or written (an unusable directory is a config error)."""


class StateFile:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / SNAPSHOT_NAME
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"cannot create state dir {self.dir}: {exc.strerror}"
            raise CollectorConfigError(message) from exc
        if not os.access(self.dir, os.W_OK):
            raise CollectorConfigError(f"state dir {self.dir} is not writable")

    def read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateDirError(f"cannot read snapshot {self.path}: {exc.strerror}") from exc

    def written_at(self) -> float | None:
        """When (Unix seconds) the snapshot on disk was written; None without one."""
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def write(self, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` one after another as the new snapshot, replacing the old one
        only once they are all on disk."""
        tmp = self.path.with_suffix(".tmp")
        try:
            with tmp.open("wb", buffering=WRITE_BUFFER) as handle:
                handle.writelines(chunks)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StateDirError(f"cannot write snapshot {self.path}: {exc.strerror}") from exc

    def quarantine(self) -> Path:
        """Move an unusable snapshot aside (kept for inspection, never overwritten)."""
        target = self.path.with_name(f"{SNAPSHOT_NAME}.bad-{int(time.time())}")
        self.path.replace(target)
        return target
