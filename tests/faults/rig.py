"""A running system to break: Mosquitto, the collector, one agent per branch, emulated devices.

Production settings wherever they shape recovery (reconnect backoffs, replay
interval, Mosquitto's persistence); what differs is said where it is set. The
rig's steps (kill -9, restart, unplug, ...) are the scenarios' vocabulary, and
:meth:`Rig.settle` is the end of every scenario: the devices go quiet, and the
collector must then show exactly what the agents recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

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
# The agents' status interval (production: 60 s): the rig reads device links and bad frames.
STATUS_SECONDS: Final = 2.0
# How long the agents get to record what the devices last sent before the figures are taken,
# and how long the recorded count must stand still to count the rest as lost on the wire.
WIRE_SECONDS: Final = 30.0
WIRE_QUIET: Final = 1.0


@dataclass
class RigSettings:
    branches: int = 1
    rates: Rates = field(default_factory=Rates)
    # The collector's snapshots (production default 15 s): often, so a kill lands after one.
    snapshot_seconds: float = 1.0
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
        # Spools this agent had before (replaced, or set aside as corrupt): their events
        # came first.
        self.earlier: list[EarlierSpool] = []

    def recorded(self) -> Truth:
        """Every event the agent's spools recorded, the earlier spools' included."""
        truth = Truth(self.branch.region, self.branch.branch)
        for earlier in self.earlier:
            truth.extend(spooled_events(earlier.path))
        return truth.extend(spooled_events(self.spool))

    def deliverable(self) -> Truth:
        """What the collector must count: the earlier spools' events up to the last seq it
        had of each (the rest went with that spool), and every event of the current one."""
        truth = Truth(self.branch.region, self.branch.branch)
        for earlier in self.earlier:
            truth.extend(spooled_events(earlier.path, up_to=earlier.delivered))
        return truth.extend(spooled_events(self.spool))

    def gone_with_spools(self) -> int:
        """Countable events the earlier spools recorded but never delivered."""
        return self.recorded().countable - self.deliverable().countable

    def produced(self, heard_only: bool = True) -> Truth:
        truth = Truth(self.branch.region, self.branch.branch)
        for device in self.branch.devices.values():
            unheard = {id(meaning) for meaning in device.unheard} if heard_only else set()
            truth.extend(meaning for meaning in device.sent if id(meaning) not in unheard)
        return truth


@dataclass(frozen=True)
class EarlierSpool:
    """A spool an agent no longer uses (a copy, or the file itself moved away)."""

    path: Path
    delivered: int  # the last seq of it the collector had when the agent left it


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
        f'[mqtt]\nbroker = "{broker_url}"\nstatus_interval_seconds = {STATUS_SECONDS}\n'
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
            "mosquitto", workdir=broker_dir, extra_config=[f"autosave_interval {AUTOSAVE_SECONDS}"]
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
        # Where the last scenario left the figures: the next one reports what it adds.
        self.baseline: Settled | None = None

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

    def repair(self) -> None:
        """Every process up, every disk roomy, every device plugged in, the load running:
        what a scenario that failed half-way may have left otherwise."""
        self.load.resume()
        if self.broker.pid is None:
            self.broker.start()
        self.collector.limit_file_size(None)
        if not self.collector.alive:
            self.start_collector()
        for agent in self.agents:
            agent.proc.restart_on_failure = False
            agent.proc.limit_file_size(None)
            agent.proc.start()
            for name, device in agent.branch.devices.items():
                if device.emulator is None:
                    self.load.call(agent.branch.plug(name))
        wait_until(self.load.connected, 30, "every agent to open its devices")

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

    def agent_view(self, branch: str, region: str = REGION, agent: str = AGENT) -> dict[str, Any]:
        """The API's view of one agent ({} while the collector does not know it)."""
        status, body = self.http.get(f"/api/v1/branches/{region}/{branch}")
        if status != 200:
            return {}
        agents = json.loads(body)["branch"]["agents"]
        return next((a for a in agents if a["agent"] == agent), {})

    def recorded(self) -> list[Truth]:
        return [agent.recorded() for agent in self.agents]

    def expected(self) -> list[Truth]:
        """What the collector must count (:meth:`AgentRig.deliverable`)."""
        return [agent.deliverable() for agent in self.agents]

    def produced(self, heard_only: bool = True) -> list[Truth]:
        return [agent.produced(heard_only) for agent in self.agents]

    def difference(self) -> Difference:
        return compare(self.expected(), self.metrics())

    def wait(self, seconds: float) -> None:
        """Let the load run (the rig's one deliberate pause: load, not a race)."""
        time.sleep(seconds)

    def timed_wait(self, seconds: float) -> float:
        started = time.monotonic()
        self.wait(seconds)
        return time.monotonic() - started

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

    def settle(self, timeout: float = 60.0, stable: float | None = None) -> Settled:
        """Quiet the devices, let the agents record what is on the wire, then wait until every
        spool is sent and the collector shows exactly what the agents recorded (or, with
        ``stable``, until its difference has not changed for that long: a known loss).
        The figures are those since the last settle; the load stays paused
        (:meth:`Load.resume` goes on)."""
        self.load.pause()

        recorded: list[tuple[int, float]] = []

        def heard_all() -> bool:
            """Every countable event heard is recorded, or the count stopped moving (lost)."""
            now = sum(t.countable for t in self.recorded())
            if sum(t.countable for t in self.produced()) == now:
                return True
            if not recorded or recorded[-1][0] != now:
                recorded.append((now, time.monotonic()))
            return time.monotonic() - recorded[-1][1] >= WIRE_QUIET

        wait_until(heard_all, WIRE_SECONDS, "the agents to record what the devices sent")
        last: list[Difference] = []
        since = [time.monotonic()]

        def done() -> bool:
            if any(unsent(agent.spool) for agent in self.agents):
                return False
            diff = self.difference()
            if not last or diff != last[0]:
                last[:] = [diff]
                since[0] = time.monotonic()
            added = diff if self.baseline is None else diff.since(self.baseline.difference)
            return added.exact or (stable is not None and time.monotonic() - since[0] >= stable)

        with contextlib.suppress(AssertionError):  # inexact: the difference says how
            wait_until(done, timeout, "the collector to show what the agents recorded")
        now = Settled(
            difference=last[0] if last else self.difference(),
            produced=sum(t.countable for t in self.produced(heard_only=False)),
            heard=sum(t.countable for t in self.produced()),
            recorded=sum(t.countable for t in self.recorded()),
        )
        base, self.baseline = self.baseline, now
        return now if base is None else now.since(base)


@dataclass(frozen=True)
class Settled:
    """Countable events at the end of a scenario, from the devices to the collector."""

    difference: Difference  # the collector against what the agents recorded
    produced: int  # sent by the devices
    heard: int  # sent while an agent had the port open
    recorded: int  # in the agents' spools

    def since(self, base: Settled) -> Settled:
        """The figures of what happened after ``base`` (the previous scenario's end)."""
        return Settled(
            difference=self.difference.since(base.difference),
            produced=self.produced - base.produced,
            heard=self.heard - base.heard,
            recorded=self.recorded - base.recorded,
        )

    @property
    def lost_on_the_wire(self) -> int:
        """Sent while the port was open but never recorded (in the line when an agent died)."""
        return self.heard - self.recorded
