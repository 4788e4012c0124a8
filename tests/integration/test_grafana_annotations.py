"""The running collector annotates the branch floor board as required posts empty and fill.

A real collector process, fed through a real Mosquitto, posts to the fake of Grafana's
documented API (``tests/unit/test_grafana_push.py``); with Grafana away it keeps
ingesting and counts the failures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker, free_port
from branchwatch.contract import events as ev
from tests.support import CollectorProcess, FakeAgent, sample, wait_until
from tests.unit.test_grafana_push import TOKEN, FakeGrafana, assert_post_1_emptied

pytestmark = pytest.mark.integration

T0 = float(int(time.time()) - 600)


def collector_with_grafana(
    broker: EmbeddedBroker, tmp_path: Path, grafana_url: str
) -> CollectorProcess:
    token = tmp_path / "grafana-token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    config = tmp_path / "collector.toml"
    config.write_text(
        "[grafana]\n"
        "enabled = true\n"
        f'url = "{grafana_url}"\n'
        f'token_file = "{token}"\n'
        "timeout_seconds = 1.0\n"
    )
    return CollectorProcess(broker.url, tmp_path, "grafana-annotations", ["--config", str(config)])


def greeter_day(agent: FakeAgent) -> None:
    script = [
        (0, ev.BranchOpened, {}),
        (60, ev.PositionStaffed, {"position": 1, "staff": "s1"}),
        (300, ev.PositionVacated, {"position": 1, "staff": "s1"}),
        (430, ev.PositionStaffed, {"position": 1, "staff": "s2"}),
        (440, ev.PositionStaffed, {"position": 4, "staff": "t4"}),  # not required: no note
    ]
    agent.publish(
        kind(v=1, seq=seq, ts=T0 + offset, device="intercom-1", **fields)
        for seq, (offset, kind, fields) in enumerate(script, start=1)
    )


@pytest.fixture
def agent(mosquitto: EmbeddedBroker) -> Iterator[FakeAgent]:
    fake = FakeAgent(mosquitto.port, "north", "br-0001", "edge-1")
    yield fake
    fake.close()


def test_post_emptied_and_filled_become_annotations(
    mosquitto: EmbeddedBroker, agent: FakeAgent, tmp_path: Path
) -> None:
    with FakeGrafana() as grafana:
        collector = collector_with_grafana(mosquitto, tmp_path, grafana.url).start()
        try:
            greeter_day(agent)
            wait_until(lambda: len(grafana.annotations) >= 3, 10, "three annotations")
            samples = wait_until(
                lambda: (
                    (s := collector.metrics())
                    and sample(s, "branchwatch_collector_annotations_total", result="posted") == 3
                    and s
                ),
                5,
                "annotations counted",
            )
        finally:
            collector.kill()
    assert sample(samples, "branchwatch_collector_annotations_total", result="failed") == 0
    texts = [a["text"] for a in grafana.annotations]
    assert texts == [
        "Post 1 (greeting and ticket desk) filled at north/br-0001 after 1 min 00 s empty",
        "Post 1 (greeting and ticket desk) emptied at north/br-0001",
        "Post 1 (greeting and ticket desk) filled at north/br-0001 after 2 min 10 s empty",
    ]
    assert_post_1_emptied(grafana.annotations[1], int((T0 + 300) * 1000))
    refilled = grafana.annotations[2]
    assert (refilled["time"], refilled["timeEnd"]) == (
        int((T0 + 300) * 1000),
        int((T0 + 430) * 1000),
    )


def test_grafana_away_is_counted_and_ingest_goes_on(
    mosquitto: EmbeddedBroker, agent: FakeAgent, tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    collector = collector_with_grafana(mosquitto, tmp_path, nowhere).start()
    try:
        greeter_day(agent)
        samples = wait_until(
            lambda: (
                (s := collector.metrics())
                and sample(s, "branchwatch_collector_annotations_total", result="failed") == 3
                and s
            ),
            15,
            "three failed annotations",
        )
        staffed = sample(
            samples, "branchwatch_position_staffed", region="north", branch="br-0001", position="1"
        )
        assert staffed == 1
        assert collector.get("/readyz")[0] == 200
    finally:
        collector.kill()
    log = collector.log()
    assert log.count("Grafana annotation failed") == 1  # once, however many failures
    assert f"cannot reach Grafana at {nowhere}" in log
    assert TOKEN not in log


def test_an_unreadable_token_file_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    missing = tmp_path / "no-such-token"
    config.write_text(
        f'[grafana]\nenabled = true\nurl = "http://127.0.0.1:3000"\ntoken_file = "{missing}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "branchwatch", "collector", "run", "--config", str(config),
         "--http", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot read Grafana token file {missing}" in result.stderr
    assert "Traceback" not in result.stderr
