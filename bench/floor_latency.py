"""Threshold → ``NOTE`` on the intercom: part 2 of ``python -m bench.floor_loop``.

A real Mosquitto, a real collector (``branchwatch collector run``) and a real
agent (``branchwatch agent run``) whose two devices are emulators on ptys: the
queue machine opens the branch, the intercom checks staff in at posts 1 to 4.
Then, N times: post 1 is vacated (``OUT 1``), the collector's notice reaches the
intercom's pty as a ``NOTE`` line, post 3 acknowledges it and post 1 is staffed
again. The latency is the NOTE line's arrival on the pty minus the threshold:
the vacate's event time (as the collector holds it, the agent's timestamp) plus
``post_empty_seconds``. It also gives the same figure from the moment the
bench wrote ``OUT 1`` (that adds the agent's read and publish).

``post_empty_seconds`` is short here (2 s instead of the default 60 s) so that
twenty runs take a minute; what is measured, the collector's notice tick, its
publish and the agent's delivery to the device, does not depend on it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench.floor_loop import SENT_AFTER_TARGET, percentile
from branchwatch.broker import EmbeddedBroker
from tests.integration.test_agent_fakes import agent_toml
from tests.integration.test_floor_notices_e2e import (
    Devices,
    branch,
    devices_up,
    staffed,
    wait_notices_on,
)
from tests.support import CollectorProcess, LoggedProcess, wait_until

POST_EMPTY = 2.0
COLLECTOR_TOML = f"""
[notices]
post_empty_seconds = {POST_EMPTY}
ack_timeout_seconds = 60.0
"""
NOTICE_WAIT = POST_EMPTY + 10.0  # a notice later than this is a failure, not a figure


class Run(NamedTuple):
    after_threshold: float  # NOTE on the pty minus (vacate event ts + post_empty_seconds)
    after_write: float  # NOTE on the pty minus (the moment OUT 1 was written + post_empty)


class Agent(LoggedProcess):
    """``branchwatch agent run`` as a subprocess."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        super().__init__(workdir / "agent.log")
        self.config = workdir / "agent.toml"
        self.config.write_text(config_text)

    def start(self) -> Agent:
        self.spawn([sys.executable, "-m", "branchwatch", "agent", "run", "--config",
                    str(self.config)])  # fmt: skip
        return self


class Intercom(Devices):
    """The test's emulated queue machine and intercom, timing each NOTE as it arrives."""

    def next_note(self, seen: int, timeout: float) -> tuple[str, float]:
        """The line after the first ``seen`` the agent wrote, and when it arrived."""

        async def wait() -> tuple[str, float]:
            await self.intercom.wait_for(lambda: len(self.intercom.lines()) > seen, timeout)
            arrived = time.time()  # on the emulator's loop, as the bytes are read
            return self.intercom.lines()[seen].decode(), arrived

        return self._call(wait(), timeout + 5)


def measure_latency(runs: int) -> list[Run]:
    """Vacate post 1 ``runs`` times; each notice's latency."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp,
        EmbeddedBroker("mosquitto", persistent=False) as broker,
    ):
        workdir = Path(tmp)
        (workdir / "collector.toml").write_text(COLLECTOR_TOML)
        state = workdir / "collector"
        state.mkdir()
        config = ["--config", str(workdir / "collector.toml")]
        collector = CollectorProcess(broker.url, state, "bench-collector", extra=config)
        devices = Intercom()
        agent = Agent(workdir, agent_toml(broker.url, str(workdir / "spool.db"),
                                          devices.agent_devices()))  # fmt: skip
        try:
            collector.start()
            agent.start()
            _open_branch(collector, devices)
            return [_one_run(collector, devices, n) for n in range(runs)]
        except AssertionError as exc:  # a wait timed out: the logs say why
            logs = f"agent log:\n{agent.log()}\ncollector log:\n{collector.log()}"
            raise AssertionError(f"{exc}\n{logs}") from None
        finally:
            agent.kill()
            collector.kill()
            devices.close()


def _post_1_since(collector: CollectorProcess) -> float:
    """When post 1 was last vacated or staffed, as the collector holds it (event time)."""
    since = next(p["since"] for p in branch(collector)["positions"] if p["position"] == 1)
    assert isinstance(since, float)
    return since


def _open_branch(collector: CollectorProcess, devices: Devices) -> None:
    both = {"queue-1", "intercom-1"}
    wait_until(lambda: devices_up(collector) == both, 30, "both devices up in the collector")
    devices.play(devices.queue, "OPEN")
    devices.play(devices.intercom, "IN 1 s.li", "IN 2 s.zhao", "IN 3 s.wu", "IN 4 s.he")
    wait_until(lambda: staffed(collector) == {1, 2, 3, 4}, 10, "posts 1 to 4 staffed")
    wait_notices_on(collector)


def _one_run(collector: CollectorProcess, devices: Intercom, seen: int) -> Run:
    written = time.time()
    devices.play(devices.intercom, "OUT 1")
    line, arrived = devices.next_note(seen, NOTICE_WAIT)
    verb, notice, position, _ = line.split(" ", 3)
    assert (verb, position) == ("NOTE", "3"), line
    since = _post_1_since(collector)
    devices.play(devices.intercom, f"ACK 3 {notice}", "IN 1 s.li")
    wait_until(lambda: branch(collector)["notices"] == [], 10, "the episode resolved")
    return Run(arrived - (since + POST_EMPTY), arrived - (written + POST_EMPTY))


def report_latency(runs: list[Run]) -> float:
    """Print the table; the p99 from the threshold (seconds)."""
    rows = []
    for label, values in (
        ("threshold (vacate event ts + post_empty_seconds)", [r.after_threshold for r in runs]),
        ("OUT 1 written to the pty + post_empty_seconds", [r.after_write for r in runs]),
    ):
        ordered = sorted(values)
        p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
        assert p50 is not None and p99 is not None
        rows.append((label, p50, p99, ordered[-1], statistics.fmean(ordered)))
    print(f"\n### notice latency: {len(runs)} times post 1 vacated, Mosquitto, collector, agent")
    print("\n| NOTE line on the intercom's pty, after | p50 | p99 | max | mean | target |")
    print("|---|---|---|---|---|---|")
    for i, (label, p50, p99, worst, mean) in enumerate(rows):
        target = f"p99 ≤ {SENT_AFTER_TARGET:g} s" if i == 0 else ""
        print(f"| {label} | {p50:.3f} s | {p99:.3f} s | {worst:.3f} s | {mean:.3f} s | {target} |")
    return rows[0][2]


if __name__ == "__main__":
    report_latency(measure_latency(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
