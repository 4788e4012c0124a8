"""A running system to break: Mosquitto, the collector, one agent per branch, emulated devices.

Production settings wherever they shape recovery (reconnect backoffs, replay
interval, Mosquitto's persistence); what differs is said where it is set. The
rig's steps (kill -9, restart, unplug, ...) are the scenarios' vocabulary, and
:meth:`Rig.settle` is the end of every scenario: the devices go quiet, and the
collector must then show exactly what the agents recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from branchwatch.broker import EmbeddedBroker
from tests.faults.load import DEVICES, PAD_COUNTER, BranchLoad, Load, Rates
from tests.faults.processes import Proc
from tests.faults.truth import COUNTED, Difference, Truth, compare, spooled_events, unsent
from tests.support import CollectorProcess, Samples, wait_until

REGION: Final = "north"
AGENT: Final = "agent-1"
# Mosquitto saves its persistence file this often (the kit's branchwatch.conf: 60 s). A
# kill -9 loses what arrived since the last save; 1 s makes "with persistence" mean
# the sessions and queues survive, up to the last second.
AUTOSAVE_SECONDS: Final = 1
# How long the agents get to record what the devices last sent before the figures are taken.
WIRE_SECONDS: Final = 3.0


@dataclass
class RigSettings:
    branches: int = 1
    rates: Rates = field(default_factory=Rates)
    # The collector's snapshots (production default 15 s): often, so a kill lands after one.
    snapshot_seconds: float = 1.0
    persistence: bool = True
    seed: int = 1


class AgentRig:
    """One branch: its agent process, config, spool and emulated devices."""

    def __init__(self, workdir: Path, branch: BranchLoad, broker_url: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.branch = branch
        self.spool = workdir / "spool.db"
        self.config = workdir / "agent.toml"
        self.config.write_text(agent_config(branch, broker_url, self.spool))
        argv = [sys.executable, "-m", "tests.faults.agent_main", "--log-level", "info",
                "agent", "run", "--config", str(self.config)]  # fmt: skip
        self.proc = Proc(f"agent {branch.branch}", argv, workdir / "agent.log")

    def recorded(self) -> Truth:
        truth = Truth(self.branch.region, self.branch.branch)
        return truth.extend(spooled_events(self.spool))

    def produced(self, heard_only: bool = True) -> Truth:
        truth = Truth(self.branch.region, self.branch.branch)
        for device in self.branch.devices.values():
            unheard = {id(meaning) for meaning in device.unheard} if heard_only else set()
            truth.extend(meaning for meaning in device.sent if id(meaning) not in unheard)
        return truth


def agent_config(branch: BranchLoad, broker_url: str, spool: Path) -> str:
    """The agent's TOML: production defaults but the status interval (the rig reads it)."""
    devices = "".join(
        f'[[devices]]\nid = "{name}"\nprotocol = "{protocol}"\n'
        f'url = "{branch.devices[name].link}"\n'
        + (f'options = {{ counter = "{PAD_COUNTER}" }}\n' if name == "pads" else "")
        for name, protocol in DEVICES.items()
    )
    return (
        f'region = "{branch.region}"\nbranch = "{branch.branch}"\nagent = "{AGENT}"\n'
        f'[mqtt]\nbroker = "{broker_url}"\nstatus_interval_seconds = 5.0\n'
        f'[spool]\npath = "{spool}"\n{devices}'
    )


class Rig:
    def __init__(self, workdir: Path, settings: RigSettings | None = None) -> None:
        self.workdir = workdir
        self.settings = settings = settings or RigSettings()
        workdir.mkdir(parents=True, exist_ok=True)
        broker_dir = workdir / "broker"
        broker_dir.mkdir(exist_ok=True)
        self.broker = EmbeddedBroker(
            "mosquitto",
            workdir=broker_dir,
            persistent=settings.persistence,
            extra_config=[f"autosave_interval {AUTOSAVE_SECONDS}"] if settings.persistence else [],
        )
        self.state_dir = workdir / "collector-state"
        self.state_dir.mkdir(exist_ok=True)
        collector_config = workdir / "collector.toml"
        collector_config.write_text(
            f"[state]\nsnapshot_interval_seconds = {settings.snapshot_seconds}\n"
        )
        # Its URL, argv and HTTP helpers; the process itself is a Proc (its log through a pipe).
        self.http = CollectorProcess(
            self.broker.url, self.state_dir, "faults-collector",
            extra=["--config", str(collector_config)],
        )  # fmt: skip
        self.collector = Proc("collector", self.http.argv, workdir / "collector.log")
        branches = [
            BranchLoad(REGION, f"b{i:04d}", workdir / f"branch-{i}", settings.seed + i)
            for i in range(1, settings.branches + 1)
        ]
        self.agents = [AgentRig(workdir / f"branch-{i + 1}", b, self.broker.url)
                       for i, b in enumerate(branches)]  # fmt: skip
        self.load = Load(branches, settings.rates)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Rig:
        self.broker.start()
        self.start_collector()
        self.load.start()
        for agent in self.agents:
            agent.proc.start()
        wait_until(self.load.connected, 30, "every agent to open its devices")
        self.load.run()
        return self

    def close(self) -> None:
        for agent in self.agents:
            agent.proc.close()
        self.load.close()
        self.collector.close()
        self.broker.close()

    def __enter__(self) -> Rig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------------

    def start_collector(self, timeout: float = 30.0) -> float:
        """Start it; seconds until /readyz (subscribed to the broker)."""
        started = time.monotonic()
        self.collector.start()
        try:
            wait_until(lambda: self.http.get("/readyz")[0] == 200, timeout, "collector /readyz")
        except AssertionError:
            raise AssertionError(f"collector not ready; log:\n{self.collector.log()}") from None
        return time.monotonic() - started

    def kill_broker(self) -> None:
        pid = self.broker.pid
        assert pid is not None, "the broker is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self.broker.pid is None, 10, "the broker to die")

    def metrics(self) -> Samples:
        return self.http.metrics()

    def recorded(self) -> list[Truth]:
        return [agent.recorded() for agent in self.agents]

    def produced(self, heard_only: bool = True) -> list[Truth]:
        return [agent.produced(heard_only) for agent in self.agents]

    def difference(self) -> Difference:
        return compare(self.recorded(), self.metrics())

    def wait(self, seconds: float) -> None:
        """Let the load run (the rig's one deliberate pause: load, not a race)."""
        time.sleep(seconds)

    # -- measuring ------------------------------------------------------------------------------

    def caught_up(self, frozen: list[Truth], timeout: float) -> float | None:
        """Seconds until every counter reaches what ``frozen`` predicts; None: never did."""
        want = {k: v for t in frozen for k, v in t.samples().items() if k[0] in COUNTED}
        started = time.monotonic()

        def reached() -> bool:
            got = self.metrics()
            return all(got.get(key, 0.0) >= value for key, value in want.items())

        try:
            wait_until(reached, timeout, "the collector to catch up")
        except AssertionError:
            return None
        return time.monotonic() - started

    def settle(self, timeout: float = 60.0) -> Settled:
        """Quiet the devices, let the agents record what is on the wire, then wait until every
        spool is sent and the collector shows exactly what the agents recorded. The load stays
        paused (:meth:`Load.resume` goes on)."""
        self.load.pause()

        def heard_all() -> bool:
            produced = sum(t.countable for t in self.produced())
            return produced == sum(t.countable for t in self.recorded())

        with contextlib.suppress(AssertionError):  # lost on the wire: the figures say so
            wait_until(heard_all, WIRE_SECONDS, "the agents to record what the devices sent")
        last: list[Difference] = []

        def exact() -> bool:
            if any(unsent(agent.spool) for agent in self.agents):
                return False
            last[:] = [self.difference()]
            return last[0].exact

        with contextlib.suppress(AssertionError):  # inexact: the difference says how
            wait_until(exact, timeout, "the collector to show what the agents recorded")
        return Settled(
            difference=last[0] if last else self.difference(),
            produced=sum(t.countable for t in self.produced(heard_only=False)),
            heard=sum(t.countable for t in self.produced()),
            recorded=sum(t.countable for t in self.recorded()),
        )


@dataclass(frozen=True)
class Settled:
    """Countable events at the end of a scenario, from the devices to the collector."""

    difference: Difference  # the collector against what the agents recorded
    produced: int  # sent by the devices
    heard: int  # sent while an agent had the port open
    recorded: int  # in the agents' spools

    @property
    def lost_on_the_wire(self) -> int:
        """Sent while the port was open but never recorded (in the line when an agent died)."""
        return self.heard - self.recorded
