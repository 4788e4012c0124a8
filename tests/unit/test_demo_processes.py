"""The demo's child processes: stopped for sure, gone with the demo even when it is killed
outright, readiness with a clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from branchwatch.broker import MOSQUITTO_PATHS
from branchwatch.demo.processes import Child, DemoError, wait_ready
from tests.support import require_binary, wait_until

STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("started", flush=True)
time.sleep(60)
"""


PARENT = """
import sys, time
from pathlib import Path
from branchwatch.broker import EmbeddedBroker
from branchwatch.demo.processes import Child
work = Path(sys.argv[2])
broker = EmbeddedBroker("mosquitto", workdir=work, die_with_parent=sys.argv[1] == "yes").start()
child = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], work / "child.log")
print(broker.pid, child.pid, flush=True)
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


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_children_of_a_parent_killed_outright(tmp_path: Path, die_with_parent: bool) -> None:
    """The demo's children and its broker get SIGTERM when it is killed with SIGKILL; a
    broker started as the tests start theirs (the default) is left alone."""
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    flag = "yes" if die_with_parent else "no"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, flag, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    broker = child = 0
    try:
        assert parent.stdout is not None
        broker, child = (int(pid) for pid in parent.stdout.readline().split())
        assert alive(broker) and alive(child)
        parent.kill()
        parent.wait(5)
        wait_until(lambda: not alive(child), 10, "the child to die with its parent")
        if die_with_parent:
            wait_until(lambda: not alive(broker), 10, "the broker to die with its parent")
        else:
            assert alive(broker), "without die_with_parent the broker outlives its parent"
    finally:
        parent.kill()
        for pid in (broker, child):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
