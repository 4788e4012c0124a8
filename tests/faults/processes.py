"""The rig's processes: output piped into a log, ``kill -9``, restarts the way systemd does.

Output goes through a pipe that this process copies into the log file, so a
file-size limit put on the child (the "disk full" faults) never silences its
log: a pipe is not a file. The limit itself is ``RLIMIT_FSIZE``: a write past
it fails with EFBIG (Python ignores SIGXFSZ), which is what SQLite and the
snapshot writer see of a full disk, with no root and no mount needed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

REPO: Final = Path(__file__).resolve().parents[2]
# The shipped units restart after 5 s (RestartSec=5); the rig waits less to keep runs short.
RESTART_SEC: Final = 0.5
EXIT_CONFIG: Final = 2  # systemd's RestartPreventExitStatus=2: a config error is not retried


class Proc:
    """One program as a real subprocess; restarted on failure when ``restart_on_failure``."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.restart_on_failure = False
        # Applied at every start while set: the disk stays full across restarts.
        self.fsize_limit: int | None = None
        self.exit_codes: list[int] = []  # of every run that ended, in order
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None
        self._exited = threading.Event()
        self._exited.set()
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Proc:
        with self._lock:
            if self.alive:
                return self
            limit = self.fsize_limit
            self._popen = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=self.env,
                preexec_fn=None if limit is None else _fsize_hook(limit),  # noqa: PLW1509
            )
            self.starts += 1
            self._exited.clear()
            popen = self._popen
        assert popen.stdout is not None
        threading.Thread(target=self._pump, args=(popen.stdout,), daemon=True).start()
        threading.Thread(target=self._watch, args=(popen,), daemon=True).start()
        return self

    def kill9(self) -> None:
        """SIGKILL, as the OOM killer or a power cut of the process would; no restart by us."""
        restart, self.restart_on_failure = self.restart_on_failure, False
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.wait_exit(10)
        self.restart_on_failure = restart

    def term(self, timeout: float = 10.0) -> int:
        """SIGTERM; the exit code (it must exit within ``timeout``)."""
        self.restart_on_failure = False
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        return self.wait_exit(timeout)

    def close(self) -> None:
        """Stop it whatever it is doing (the end of a run)."""
        self.restart_on_failure = False
        if self.alive:
            try:
                self.term(5)
            except TimeoutError:
                self.kill9()

    def wait_exit(self, timeout: float) -> int:
        if not self._exited.wait(timeout):
            raise TimeoutError(f"{self.name} did not exit within {timeout} s")
        return self.exit_codes[-1] if self.exit_codes else 0

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self.alive and self._popen is not None else None

    # -- faults -----------------------------------------------------------------------------

    def freeze(self) -> None:
        """SIGSTOP: it holds its connections but answers nothing (a hung process, a VM paused)."""
        pid = self.pid
        assert pid is not None, f"{self.name} is not running"
        os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = self.pid
        assert pid is not None, f"{self.name} is not running"
        os.kill(pid, signal.SIGCONT)

    def limit_file_size(self, limit: int | None) -> None:
        """Set (or lift, None) the running process's file-size limit, and for later starts."""
        self.fsize_limit = limit
        pid = self.pid
        if pid is not None:
            soft = resource.RLIM_INFINITY if limit is None else limit
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))

    def rss_bytes(self) -> int:
        """Resident set size now (0 when it is not running)."""
        pid = self.pid
        if pid is None:
            return 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log(self, tail: int = 8000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    # -- threads ----------------------------------------------------------------------------

    def _pump(self, stream: IO[bytes]) -> None:
        with self.log_path.open("ab") as log:
            for line in stream:
                log.write(line)
                log.flush()

    def _watch(self, popen: subprocess.Popen[bytes]) -> None:
        code = popen.wait()
        restart = self.restart_on_failure  # read before anyone waiting on the exit wakes up
        self.exit_codes.append(code)
        self._exited.set()
        if restart and code not in (0, EXIT_CONFIG):
            time.sleep(RESTART_SEC)
            if self.restart_on_failure:
                self.start()


def _fsize_hook(limit: int) -> Callable[[], None]:
    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return hook
