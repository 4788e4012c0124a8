"""The ``sim`` kind: the branch simulator as one device, for demos and load.

Options: ``branch`` (default ``sim``), ``region`` (default ``sim``; only seeds
the model, identity comes from the agent's topic), ``seed`` (default 1),
``speed`` (simulated seconds per real second, default 1), ``start_hour``
(simulated time of day at start, default 9.0), ``tick`` (seconds between
steps, default 0.5). Every simulated event, whatever device the model gave
it (queue, pads, intercom), is emitted through this one device with the
model's ``ts``; the link is always up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent.devices.base import Clock, DeviceConfig, DeviceContext, check_options, option
from agent.devices.stream import number_option
from agent.errors import DeviceConfigError
from branchwatch.contract.ids import is_site_id
from branchwatch.contract.messages import Notify
from branchwatch.sim.model import BranchSim

KNOWN = frozenset({"branch", "region", "seed", "speed", "start_hour", "tick"})


class SimDevice:
    kind = "sim"

    def __init__(
        self, config: DeviceConfig, context: DeviceContext, clock: Clock | None = None
    ) -> None:
        check_options(config, KNOWN)
        opts = config.options
        branch, region = option(opts, "branch", "sim", str), option(opts, "region", "sim", str)
        if not (is_site_id(branch) and is_site_id(region)):
            raise DeviceConfigError(f"device {config.id}: branch/region must be lower-case ids")
        start_hour: Any = opts.get("start_hour", 9.0)
        if isinstance(start_hour, bool) or not isinstance(start_hour, int | float):
            raise DeviceConfigError(f"device {config.id}: option 'start_hour' must be a number")
        self.context = context
        self.clock = clock or context.now
        self.tick = number_option(config, "tick", 0.5)
        self._start = self.clock()
        try:
            self.model = BranchSim(
                region,
                branch,
                seed=option(opts, "seed", 1, int),
                speed=number_option(config, "speed", 1.0),
                start_hour=float(start_hour),
                ts_origin=self._start,
            )
        except ValueError as exc:
            raise DeviceConfigError(f"device {config.id}: {exc}") from exc

    def step(self) -> int:
        """Emit everything the model did up to now; how many events."""
        # 1 ms behind the clock, as the simulator's publisher does, so no ts is in the future.
        events = self.model.advance(self.model.sim_time(self.clock() - 0.001))
        for event in events:
            self.context.emit(event)  # the model's own seq and device: the core restamps them
        return len(events)

    async def run(self) -> None:
        self.context.set_link(True)
        while True:
            self.step()
            await asyncio.sleep(self.tick)

    async def notify(self, command: Notify) -> bool:
        return False
