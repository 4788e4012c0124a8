"""Child processes of the demo: each in its own process group, stopped for sure, and
on Linux gone with the demo even when it is killed outright."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from branchwatch.broker import die_with_parent_hook
from branchwatch.errors import BranchwatchError


class DemoError(BranchwatchError):
    """The demo could not start or lost one of its parts."""


class Child:
    """A subprocess in a new session (Ctrl-C at the terminal does not reach it:
    the demo stops its children in order) with stdout and stderr in ``log``.

    It gets SIGTERM if the demo dies without stopping it (SIGKILL): start it
    from the main thread, which lives as long as the demo.
    """

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - argv is built by the demo
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent_hook(),  # noqa: PLW1509 - the demo forks from one thread
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM to the child's group, SIGKILL after ``timeout``; the exit code."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(timeout)
        # Whatever the child started in its group goes too.
        self._signal_group(signal.SIGKILL)
        return self.proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """Status and body of a GET on loopback (errors as status 0)."""
    if not url.startswith("http://127.0.0.1:"):  # pragma: no cover - built by the demo
        raise ValueError(f"not a loopback URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return 0, b""


def wait_ready(child: Child, url: str, timeout: float, cancelled: Callable[[], bool]) -> None:
    """Until ``url`` answers 200; :class:`DemoError` with the child's log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancelled():
            return
        if not child.alive():
            raise DemoError(
                f"the {child.name} exited with code {child.proc.returncode} while starting; "
                f"last lines of {child.log}:\n{child.tail()}"
            )
        status, _ = http_get(url, timeout=1.0)
        if status == 200:
            return
        time.sleep(0.1)
    raise DemoError(
        f"the {child.name} was not ready within {timeout:.0f} s ({url}); "
        f"last lines of {child.log}:\n{child.tail()}"
    )
