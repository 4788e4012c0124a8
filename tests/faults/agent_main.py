"""``python -m tests.faults.agent_main [--log-level L] agent run --config FILE``.

The real ``branchwatch`` command, with one fault hook: SIGUSR1 steps the clock
the agent stamps its events with (``AgentCore``'s injected clock: every
device's "now") by ``FAULTS_CLOCK_STEP`` seconds, -3600 by default, as if
someone set the branch PC's clock back an hour while it ran; SIGUSR2 steps it
the other way (someone noticed and put it right).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any

from agent import app
from agent.core import AgentCore
from agent.devices.base import DeviceConfig, DeviceKind
from agent.spool import Spool
from branchwatch.cli import main

STEP = float(os.environ.get("FAULTS_CLOCK_STEP", "-3600"))
_offset = 0.0


def stepped_clock() -> float:
    return time.time() + _offset


def _step(signum: int, frame: FrameType | None) -> None:
    global _offset  # noqa: PLW0603 - the one piece of state this hook adds
    _offset += STEP if signum == signal.SIGUSR1 else -STEP


class SteppedCore(AgentCore):
    def __init__(
        self, devices: tuple[DeviceConfig, ...], spool: Spool, kinds: Mapping[str, DeviceKind],
        **_: Any,
    ) -> None:  # fmt: skip
        super().__init__(devices, spool, kinds, clock=stepped_clock)


def run(argv: Sequence[str]) -> int:
    signal.signal(signal.SIGUSR1, _step)
    signal.signal(signal.SIGUSR2, _step)
    setattr(app, "AgentCore", SteppedCore)  # noqa: B010 - the hook: run_agent builds this
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
