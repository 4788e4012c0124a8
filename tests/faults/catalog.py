"""Every fault the suite injects, in the order it runs them, and how big each run is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from tests.faults import hammer, hostile, scenarios, spools
from tests.faults.report import Outcome
from tests.faults.rig import Rig
from tests.faults.scenarios import Size

Run = Callable[[Rig, Size], Outcome]


@dataclass(frozen=True)
class Fault:
    name: str
    run: Run
    # A product bug this fault shows (reported, not ours to fix here): left out of `make
    # test`, so the suite stays usable; `make faults` runs it and fails until it is fixed.
    bug: str = ""
    started: bool = True  # False: the fault needs the rig's directory, not its processes


def _serial(rig: Rig, size: Size) -> Outcome:
    return hostile.hostile_serial(rig.workdir, size)


FAULTS: Final = (
    Fault("collector-kill9", scenarios.collector_kill9),
    Fault("collector-kill9-no-snapshot", scenarios.collector_kill9_without_snapshot),
    Fault("broker-kill9", scenarios.broker_kill9),
    Fault("broker-restart-no-persistence", scenarios.broker_restart_without_persistence),
    Fault("agent-kill9-burst", scenarios.agent_kill9_burst),
    Fault("spool-disk-full", spools.spool_disk_full),
    Fault("state-dir-full", scenarios.state_dir_full),
    Fault("corrupt-snapshot", scenarios.corrupt_snapshot),
    # After every fault that empties the collector: the old spools' events cannot be
    # replayed to rebuild it (on a shared rig, as `make test` runs them).
    Fault("corrupt-spool", spools.corrupt_spool),
    Fault("spool-replaced", spools.spool_replaced),
    Fault("serial-unplug", scenarios.serial_unplug),
    Fault("http-hammer", hammer.http_hammer),
    Fault("hostile-mqtt", hostile.hostile_mqtt),
    Fault("hostile-serial", _serial, started=False),
    Fault("hostile-serial-agent", hostile.hostile_serial_agent),
    Fault("clock-back", scenarios.clock_back),
)
BY_NAME: Final = {fault.name: fault for fault in FAULTS}
