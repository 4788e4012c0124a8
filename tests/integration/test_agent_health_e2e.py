"""Agent health on the wire: an emulated queue machine sending bad lines, a real agent,
Mosquitto and the collector; the bad frames, the agent's version and its up state show
in ``/metrics`` while it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwatch import __version__
from branchwatch.broker import EmbeddedBroker
from tests.integration.test_agent_devices import EmulatorProcess
from tests.integration.test_agent_e2e import collector, workdir  # noqa: F401 - fixtures
from tests.integration.test_agent_fakes import AGENT, BRANCH, REGION, AgentProcess, agent_toml
from tests.support import CollectorProcess, Samples, sample, wait_until

pytestmark = pytest.mark.integration

# Two lines that are no verb, one ISSUE without its service, then good ones.
SCRIPT = """OPEN
garbage that is no verb
ISSUE A001 cash
ISSUE A002
more garbage
ISSUE A003 cash
"""


def test_bad_lines_of_a_device_show_in_metrics_while_the_agent_runs(
    mosquitto: EmbeddedBroker,
    collector: CollectorProcess,  # noqa: F811 - the fixture imported above
    workdir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "queue.txt").write_text(SCRIPT)
    queue = EmulatorProcess("queue-line", tmp_path / "queue.txt")
    config = agent_toml(
        mosquitto.url,
        str(workdir / "spool.db"),
        f'[[devices]]\nid = "queue-1"\nprotocol = "queue-line"\nurl = "{queue.endpoint}"\n',
    )  # its status every 2 s: a count that grows shows within seconds
    agent = AgentProcess(workdir, config).start()
    where = {"region": REGION, "branch": BRANCH, "agent": AGENT}

    def bad(metrics: Samples, reason: str) -> float | None:
        return sample(
            metrics, "branchwatch_agent_bad_frames_total", **where, device="queue-1", reason=reason
        )

    def counted() -> Samples | None:
        metrics = collector.metrics()
        issued = sample(metrics, "branchwatch_tickets_issued_total", region=REGION,
                        branch=BRANCH, service="cash")  # fmt: skip
        return metrics if (bad(metrics, "unknown_verb"), issued) == (2, 2) else None

    try:
        metrics = wait_until(counted, 15, "both unknown verbs and both tickets in /metrics")
        assert bad(metrics, "bad_args") == 1
        assert sample(metrics, "branchwatch_agent_info", **where, version=__version__) == 1
        assert sample(metrics, "branchwatch_agent_up", **where) == 1
        assert sample(metrics, "branchwatch_collector_rejected_total",
                      reason="too_many_bad_frame_series") is None  # fmt: skip
        assert agent.stop() == 0
    finally:
        agent.kill()
        queue.close()
