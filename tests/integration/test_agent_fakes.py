"""A deterministic device kind for the agent tests, and an entry point that registers it.

Run as ``python -m tests.integration.test_agent_fakes agent run --config FILE``:
the real ``branchwatch`` CLI, with the ``fake-burst`` kind added to the kinds
the agent and the doctor are given. It emits
``count`` ``ticket.issued`` events (service ``cash``) at ``rate`` per second
(0: as fast as it can), then stays quiet; a ``notify`` for one of its
``positions`` is appended to ``notify_file`` as a JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from agent.devices.base import UNSTAMPED, DeviceConfig, DeviceContext
from agent.devices.registry import DEVICE_KINDS
from branchwatch.contract import Notify
from branchwatch.contract.codec import convert_event
from branchwatch.errors import ContractError
from tests.support import LoggedProcess


class FakeBurst:
    kind = "fake"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        options: dict[str, Any] = config.options
        self.context = context
        self.count = int(options.get("count", 0))
        self.rate = float(options.get("rate", 0.0))
        # Unique ticket ids across restarts of the agent process.
        self.prefix = f"{options.get('prefix', 'T')}{os.getpid() % 100000}-"
        self.notify_file = str(options.get("notify_file", ""))
        self.positions = set(options.get("positions", []))
        self.bad_every = int(options.get("bad_every", 0))
        # "evaluation": evaluation.requested on counter c1, which the collector counts
        # without keeping state (no live-ticket cap), for long runs.
        self.evaluations = options.get("events", "ticket") == "evaluation"

    async def run(self) -> None:
        self.context.set_link(True)
        for i in range(1, self.count + 1):
            if self.bad_every and i % self.bad_every == 0:
                # The contract refuses this service name: counted as a bad frame.
                self._emit(type="ticket.issued", ticket=f"{self.prefix}{i}", service="Bad Name")
            if self.evaluations:
                self._emit(type="evaluation.requested", counter="c1")
            else:
                self._emit(type="ticket.issued", ticket=f"{self.prefix}{i}", service="cash")
            if self.rate:
                await asyncio.sleep(1.0 / self.rate)
            elif i % 50 == 0:
                await asyncio.sleep(0)
        await asyncio.Event().wait()

    def _emit(self, **fields: object) -> None:
        """Untyped input converted once, as a real kind does where its input enters."""
        try:
            event = convert_event({**fields, **UNSTAMPED, "ts": self.context.now()})
        except ContractError as exc:
            self.context.bad_frame(exc.reason, exc.detail)
            return
        self.context.emit(event)

    async def notify(self, command: Notify) -> bool:
        if command.position not in self.positions:
            return False
        with open(self.notify_file, "a") as out:
            out.write(json.dumps({"id": command.id, "position": command.position}) + "\n")
        return True


REPO = Path(__file__).resolve().parents[2]


class AgentProcess(LoggedProcess):
    """``branchwatch agent run`` (with the fake kind) as a real subprocess."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        super().__init__(workdir / "agent.log")
        self.config = workdir / "agent.toml"
        self.config.write_text(config_text)
        self.spool = workdir / "spool.db"

    def start(self, *args: str) -> AgentProcess:
        argv = [sys.executable, "-m", "tests.integration.test_agent_fakes", "--log-level", "debug",
                "agent", *(args or ("run",)), "--config", str(self.config)]  # fmt: skip
        self.spawn(argv, cwd=REPO)
        return self

    def spooled(self, type_: str = "ticket.issued") -> tuple[int, int, int]:
        """(events of ``type_``, unsent events, last seq) in the spool right now."""
        if not self.spool.exists():
            return 0, 0, 0
        db = sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True)
        try:
            (count,) = db.execute(
                "SELECT count(*) FROM events WHERE instr(payload, ?) > 0",
                (f'"type":"{type_}"'.encode(),),
            ).fetchone()
            (unsent,) = db.execute("SELECT count(*) FROM events WHERE sent = 0").fetchone()
            (last,) = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        except sqlite3.OperationalError as exc:
            # The agent has created the file but not its tables yet: nothing spooled.
            if "no such table" not in str(exc):
                raise
            return 0, 0, 0
        finally:
            db.close()
        return int(count), int(unsent), int(last)


if __name__ == "__main__":
    import functools

    from agent import app, doctor
    from branchwatch.cli import main

    # The CLI calls these two with the shipped kinds; this harness hands them one more.
    kinds = {**DEVICE_KINDS, "fake-burst": FakeBurst}
    setattr(app, "run_agent", functools.partial(app.run_agent, kinds=kinds))  # noqa: B010
    setattr(doctor, "run_doctor", functools.partial(doctor.run_doctor, kinds=kinds))  # noqa: B010
    sys.exit(main(sys.argv[1:]))


# -- helpers the agent integration tests share (kept here: one module per concern) --

REGION, BRANCH, AGENT = "north", "b0001", "agent-1"


def agent_toml(
    broker_url: str, spool: str, devices: str, mqtt_extra: str = "", top_extra: str = ""
) -> str:
    return (
        f'region = "{REGION}"\nbranch = "{BRANCH}"\nagent = "{AGENT}"\n{top_extra}\n'
        f'[mqtt]\nbroker = "{broker_url}"\nreconnect_min_seconds = 0.2\n'
        f"reconnect_max_seconds = 1.0\nstatus_interval_seconds = 2.0\n{mqtt_extra}\n"
        f'[spool]\npath = "{spool}"\n\n{devices}\n'
    )


def burst_device(
    count: int, rate: float = 0.0, notify_file: str = "", bad_every: int = 0, events: str = "ticket"
) -> str:
    return (
        '[[devices]]\nid = "queue-1"\nprotocol = "fake-burst"\n'
        f"options = {{ count = {count}, rate = {rate}, notify_file = {json.dumps(notify_file)}, "
        f'positions = [3], bad_every = {bad_every}, events = "{events}" }}\n'
    )
