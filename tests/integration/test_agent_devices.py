"""The agent with real device kinds: emulated devices → Mosquitto → collector, and back.

The emulators run as their own processes (``python -m agent.emulators``), as an
installer would run them, and print what the agent writes to them. They serve
TCP here and play their script to the agent once it has connected (the device
tests cover ptys, unplug and replug).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import Notify, encode, topic_for
from tests.integration.test_agent_e2e import SLOW_SNAPSHOTS
from tests.integration.test_agent_fakes import AGENT, BRANCH, REGION, REPO, AgentProcess
from tests.support import CollectorProcess, mqtt_client, sample, wait_until

pytestmark = pytest.mark.integration

QUEUE_SCRIPT = """OPEN
CTR OPEN c1 high t.wang
ISSUE A001 cash
ISSUE A002 cash
garbage that is no verb
CALL A001 c1
START A001 c1 t.wang
END A001 c1
"""
INTERCOM_SCRIPT = "IN 1 s.li\nIN 3 s.wu\n"


class EmulatorProcess:
    def __init__(self, protocol: str, script: Path) -> None:
        argv = [sys.executable, "-m", "agent.emulators", protocol, "--tcp", "0",
                "--script", str(script), "--delay", "0.2"]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=REPO, text=True)
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[tuple[EmulatorProcess, EmulatorProcess]]:
    (tmp_path / "queue.txt").write_text(QUEUE_SCRIPT)
    (tmp_path / "intercom.txt").write_text(INTERCOM_SCRIPT)
    queue = EmulatorProcess("queue-line", tmp_path / "queue.txt")
    intercom = EmulatorProcess("intercom-line", tmp_path / "intercom.txt")
    yield queue, intercom
    queue.close()
    intercom.close()


def test_serial_devices_to_collector_and_a_notice_back(
    mosquitto: EmbeddedBroker,
    emulators: tuple[EmulatorProcess, EmulatorProcess],
    tmp_path: Path,
) -> None:
    queue, intercom = emulators
    state = tmp_path / "collector"
    state.mkdir()
    (tmp_path / "collector.toml").write_text(SLOW_SNAPSHOTS)
    collector = CollectorProcess(
        mosquitto.url, state, "collector", extra=["--config", str(tmp_path / "collector.toml")]
    ).start()
    workdir = tmp_path / "agent"
    workdir.mkdir()
    config = (
        f'region = "{REGION}"\nbranch = "{BRANCH}"\nagent = "{AGENT}"\n'
        f'[mqtt]\nbroker = "{mosquitto.url}"\n[spool]\npath = "{workdir / "spool.db"}"\n'
        f'[[devices]]\nid = "queue-1"\nprotocol = "queue-line"\nurl = "{queue.endpoint}"\n'
        f'[[devices]]\nid = "intercom-1"\nprotocol = "intercom-line"\nurl = "{intercom.endpoint}"\n'
    )
    agent = AgentProcess(workdir, config).start()
    client = mqtt_client(mosquitto.port)
    try:
        labels = {"region": REGION, "branch": BRANCH}

        def floor() -> bool:
            metrics = collector.metrics()
            return (
                sample(metrics, "branchwatch_tickets_issued_total", **labels, service="cash") == 2
                and sample(metrics, "branchwatch_tickets_served_total", **labels, service="cash")
                == 1
                and sample(metrics, "branchwatch_position_staffed", **labels, position="3") == 1
            )

        wait_until(floor, 15, "the emulated floor in the collector")
        assert "bad frame (unknown_verb)" in agent.log()
        notice = Notify(v=1, id="n-7", position=3, text="Post 1 needs cover")
        cmd = topic_for(REGION, BRANCH, AGENT, "cmd")
        client.publish(cmd, encode(notice), qos=1).wait_for_publish(5)
        wait_until(lambda: any(line.startswith("NOTE n-7 3") for line in intercom.lines), 10,
                   "the notice written to the intercom")  # fmt: skip
        assert agent.stop() == 0
    finally:
        client.disconnect()
        client.loop_stop()
        agent.kill()
        collector.kill()
