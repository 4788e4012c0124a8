"""The demo's child processes: stopped for sure, readiness with a clear error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from branchwatch.demo.processes import Child, DemoError, wait_ready
from tests.support import wait_until

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("started", flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def test_stop_kills_a_child_that_ignores_sigterm_and_its_group(tmp_path: Path) -> None:
    child = Child("stubborn", [sys.executable, "-c", STUBBORN], tmp_path / "stubborn.log")
    wait_until(lambda: "started" in child.tail(), 10, "child started")
    grandchildren = wait_until(lambda: children_of(child.pid), 5, "grandchild")
    assert os.getpgid(child.pid) == child.pid, "its own process group"
    code = child.stop(timeout=0.5)
    assert code is not None and code < 0
    assert not child.alive()
    wait_until(lambda: not any(alive(p) for p in grandchildren), 5, "grandchild killed")


def test_wait_ready_reports_a_child_that_never_gets_ready(tmp_path: Path) -> None:
    child = Child(
        "collector",
        [sys.executable, "-c", "print('listening soon', flush=True); import time; time.sleep(60)"],
        tmp_path / "collector.log",
    )
    try:
        with pytest.raises(DemoError, match=r"(?s)not ready within 1 s.*listening soon"):
            wait_ready(child, "http://127.0.0.1:9/readyz", 1.0, lambda: False)
    finally:
        child.stop(timeout=1)


def test_wait_ready_reports_a_child_that_exits(tmp_path: Path) -> None:
    child = Child(
        "collector",
        [sys.executable, "-c", "import sys; print('bad config'); sys.exit(2)"],
        tmp_path / "collector.log",
    )
    with pytest.raises(DemoError, match=r"(?s)exited with code 2 while starting.*bad config"):
        wait_ready(child, "http://127.0.0.1:9/readyz", 10.0, lambda: False)
    assert child.stop() == 2


def test_wait_ready_returns_when_cancelled(tmp_path: Path) -> None:
    child = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s")
    try:
        wait_ready(child, "http://127.0.0.1:9/readyz", 10.0, lambda: True)
    finally:
        child.stop(timeout=1)
    assert not child.alive()
