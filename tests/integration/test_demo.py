"""``branchwatch demo`` end to end: broker, collector, simulator; what a newcomer sees in the
first simulated half hour; nothing left behind, even when the demo is killed outright."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchwatch.broker import MOSQUITTO_PATHS
from tests.support import require_binary, wait_until
from tests.unit.test_demo_processes import alive

pytestmark = pytest.mark.integration


class DemoProcess:
    """The demo as a subprocess in its own process group (as a shell runs it)."""

    def __init__(self, *args: str) -> None:
        argv = [sys.executable, "-m", "branchwatch", "demo", *args]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def stdout(self) -> str:
        return "\n".join(self.out)

    def printed(self, pattern: str) -> str | None:
        match = re.search(pattern, self.stdout())
        return match.group(1) if match else None

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def demo_args() -> Iterator[list[str]]:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    yield ["--no-view", "--speed", "30"]


def branches(api: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(api, timeout=2) as response:
        data: dict[str, Any] = json.load(response)
    return list(data["branches"])


def three_branches_with_events(api: str) -> bool:
    listed = branches(api)
    return len(listed) == 3 and all(
        b["last_event_ts"] is not None and b["issued_total"] >= 0 for b in listed
    )


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Every live process whose command line contains ``text`` (a /proc scan)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def simulators(pids: list[int]) -> list[tuple[int, str]]:
    """Those of ``pids`` that still run ``branchwatch simulate``."""
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "branchwatch simulate" in cmdline and alive(pid):
                found.append((pid, cmdline))
    return found


def assert_nothing_left(workdir: str, pids: list[int]) -> None:
    assert processes_mentioning(workdir) == [], "broker or collector still running"
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or b"branchwatch" not in cmdline.read_bytes()
    assert not Path(workdir).exists(), "the demo removes its temporary directory"


def started(demo: DemoProcess) -> tuple[str, str, list[int]]:
    """API URL, work directory and child pids, once the demo printed them."""
    wait_until(lambda: demo.printed(r"processes\s+(.*)") or demo.proc.poll() is not None, 20)
    assert demo.proc.poll() is None, demo.stdout() + "\n".join(demo.err)
    api = demo.printed(r"API\s+(http://127\.0\.0\.1:\d+/api/v1/branches)")
    workdir = demo.printed(r"logs\s+(\S+?)/? \(")
    assert api and workdir
    pids = [int(p) for p in re.findall(r"pid (\d+)", demo.printed(r"processes\s+(.*)") or "")]
    assert len(pids) == 3, "broker, collector, simulator"
    return api, workdir, pids


def test_demo_runs_for_its_duration_and_exits_clean(demo_args: list[str]) -> None:
    demo = DemoProcess(*demo_args, "--duration", "8")
    try:
        api, workdir, pids = started(demo)
        out = demo.stdout()
        assert re.search(r"broker\s+mqtt://127\.0\.0\.1:\d+\s+\(mosquitto, MQTT 5\)", out)
        assert re.search(r"metrics\s+http://127\.0\.0\.1:\d+/metrics", out)
        wait_until(lambda: three_branches_with_events(api), 15, "3 branches with events")
        listed = branches(api)
        assert {b["branch"] for b in listed} == {"br-0001", "br-0002", "br-0003"}
        assert all(b["open"] and b["agents"][0]["up"] for b in listed)
        assert processes_mentioning(workdir), "the broker and the collector run from its workdir"
        config = (Path(workdir) / "collector.toml").read_text()
        assert "post_empty_seconds = 2.0" in config, "notices timed in simulated time (60 s / 30)"
        assert demo.wait(30) == 0, "\n".join(demo.err)
    finally:
        demo.kill()
    assert "stopping" in demo.stdout()
    assert_nothing_left(workdir, pids)


def test_ctrl_c_stops_everything(demo_args: list[str]) -> None:
    demo = DemoProcess(*demo_args)
    try:
        api, workdir, pids = started(demo)
        wait_until(lambda: three_branches_with_events(api), 15, "3 branches with events")
        os.killpg(demo.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert demo.wait(10) == 0, "\n".join(demo.err)
    finally:
        demo.kill()
    assert_nothing_left(workdir, pids)


def test_a_collector_that_cannot_start_is_reported_with_its_log(demo_args: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = DemoProcess(*demo_args, "--http-port", str(port), "--duration", "30")
        try:
            code = demo.wait(30)
        finally:
            demo.kill()
    err = "\n".join(demo.err)
    assert code == 1, "a part that cannot start: a runtime failure"
    assert "error: the collector" in err and "last lines of" in err
    kept = re.search(r"logs kept in (\S+)", err)
    assert kept, err
    assert processes_mentioning(kept.group(1)) == []
    assert (Path(kept.group(1)) / "collector.log").exists()
    for path in sorted(Path(kept.group(1)).rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() else path.rmdir()
    Path(kept.group(1)).rmdir()


def test_killed_outright_its_children_die_with_it(demo_args: list[str]) -> None:
    demo = DemoProcess(*demo_args)
    pids: list[int] = []
    workdir = ""
    try:
        api, workdir, pids = started(demo)
        wait_until(lambda: three_branches_with_events(api), 15, "3 branches with events")
        assert all(alive(pid) for pid in pids)
        os.kill(demo.proc.pid, signal.SIGKILL)  # the demo alone: no cleanup runs
        demo.wait(5)
        wait_until(lambda: not any(alive(pid) for pid in pids), 10, "broker, collector, simulator")
        assert processes_mentioning(workdir) == []
    finally:
        demo.kill()
        for pid, _ in (processes_mentioning(workdir) if workdir else []) + simulators(pids):
            os.kill(pid, signal.SIGKILL)  # a failed test leaves no orphans behind either
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)  # nobody is left to remove it


def test_within_half_an_hour_simulated_the_floor_goes_wrong_and_the_view_says_so() -> None:
    """What ``make demo`` shows in its first minute (at 30x), here at 200x to stay quick:
    the trouble, the thresholds crossed, and the floor notices sent and acknowledged."""
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    demo = DemoProcess("--speed", "200", "--seed", "7", "--refresh", "1", "--duration", "12")
    try:
        assert demo.wait(30) == 0, "\n".join(demo.err)
    finally:
        demo.kill()
    out = demo.stdout()
    assert "br-0001    thin-staffed" in out and "br-0002    busy" in out, "the banner says what"
    snapshots = out.split("branchwatch demo · simulated ")[1:]
    assert len(snapshots) >= 3, out
    clocks = [re.findall(r"^day 1 (\d\d:\d\d) ", snap) for snap in snapshots]
    assert all(clocks) and "10:00" <= clocks[0][0] < "10:05", "the simulated clock from 10:00"
    assert clocks[-1][0] > "10:20"
    alert_lines = re.findall(r"^  alerts    (.*)$", out, re.MULTILINE)
    assert any(re.search(r"cash oldest wait 2\dm\d\ds > 20m warning", a) for a in alert_lines), out
    assert any("queue-1 paper_out" in a for a in alert_lines), out
    # The collector holds notices for 5 s after it connects (16 simulated minutes at 200x).
    notice_lines = re.findall(r"^  notices   (.*)$", out, re.MULTILINE)
    told = [n for n in notice_lines if "notice to post" in n]
    assert any(re.search(r"— notice to post \d \(sent 10:\d\d\), ", n) for n in told), out
    assert any(n.startswith("cash queue too long") for n in told), "br-0002 asks for a counter"
    totals = [re.search(r"so far: (\d+) sent · (\d+) acked", n) for n in notice_lines]
    acked = [int(t.group(2)) for t in totals if t]
    assert acked and max(acked) >= 1, f"notices sent and acknowledged:\n{out}"
    assert "none open  ·  so far: 0 sent" in out, "the totals show before any notice"
    assert " 0.0" not in out, "no raw figures: durations, percentages or –"
