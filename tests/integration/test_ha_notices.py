"""Floor notices from an HA pair: both collectors send, the intercom shows each notice once,
and losing a collector loses no page.

Real parts: one Mosquitto, two collectors of the same region (different client ids, the
same notice settings), the agent as installed (a subprocess) reading an emulated queue
machine and intercom on ptys (the devices of tests/integration/test_floor_notices_e2e.py),
a Prometheus scraping both collectors with the shipped rules (``for:`` and the backstop
shortened or moved out of the way, nothing else changed) and an Alertmanager running the
example config, its receivers posting to a webhook.

The agent runs at DEBUG, so its log says when it answered a repeated notice id without
offering it to the intercom again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts import build
from alerts.config import DEFAULT
from branchwatch.broker import EmbeddedBroker
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from tests.integration.test_agent_fakes import BRANCH, REGION, AgentProcess, agent_toml
from tests.integration.test_floor_notices_e2e import (
    Devices,
    branch,
    devices_up,
    notice_totals,
    staffed,
    wait_notices_on,
)
from tests.promstack import (
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookReceiver,
    example_alertmanager_config,
)
from tests.support import CollectorProcess, wait_until

pytestmark = pytest.mark.integration

ACK_TIMEOUT = 4.0  # notices.ack_timeout_seconds: time to see both twins told, then ack
COLLECTOR_TOML = f"""
[state]
snapshot_interval_seconds = 3600.0
[notices]
post_empty_seconds = 1.0
ack_timeout_seconds = {ACK_TIMEOUT}
"""
# The shipped rules with a 1 s ``for:`` on the notice page; the backstops (post 1 and 2
# empty) an hour away, so the only page here is the unanswered chain's.
RULES = DEFAULT.replace(
    thresholds=DEFAULT_THRESHOLDS.replace(greeter_empty_seconds=3600, lobby_empty_seconds=3600),
    notice_unanswered_for_seconds=1,
)
ALERT = "BranchwatchFloorNoticeUnanswered"
TIMEOUT = 30.0


@dataclass
class Pair:
    twins: dict[str, CollectorProcess]
    agent: AgentProcess
    devices: Devices
    prometheus: PrometheusProcess
    alertmanager: AlertmanagerProcess
    webhook: WebhookReceiver


@pytest.fixture
def pair(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[Pair]:
    """Both twins and Prometheus up, the branch open with posts 1 to 4 staffed."""
    twins: dict[str, CollectorProcess] = {}
    devices = Devices()
    agent: AgentProcess | None = None
    try:
        for twin in ("a", "b"):
            state = tmp_path / f"collector-{twin}"
            state.mkdir()
            (state / "collector.toml").write_text(COLLECTOR_TOML)
            extra = ["--config", str(state / "collector.toml")]
            twins[twin] = CollectorProcess(mosquitto.url, state, f"ha-{twin}", extra).start()
        workdir = tmp_path / "agent"
        workdir.mkdir()
        config = agent_toml(mosquitto.url, str(workdir / "spool.db"), devices.agent_devices())
        agent = AgentProcess(workdir, config).start()
        rules = build.write(RULES, tmp_path / "rules")
        with (
            WebhookReceiver() as webhook,
            AlertmanagerProcess(
                example_alertmanager_config(webhook.url, tmp_path / "alertmanager.yml"),
                tmp_path / "am",
            ) as am,
            PrometheusProcess(
                [c.url for c in twins.values()], rules, am.url, workdir=tmp_path / "prom"
            ) as prom,
        ):
            wait_until(lambda: all(devices_up(c) == {"queue-1", "intercom-1"}
                                   for c in twins.values()),
                       20, f"both devices up in both twins; agent log:\n{agent.log()}")  # fmt: skip
            devices.play(devices.queue, "OPEN")
            devices.play(devices.intercom, "IN 1 s.li", "IN 2 s.zhao", "IN 3 s.wu", "IN 4 s.he")
            # A fresh collector holds events until the agent's replay answer is in.
            wait_until(lambda: all(staffed(c) == {1, 2, 3, 4} for c in twins.values()),
                       30, "posts 1-4 staffed in both twins")  # fmt: skip
            for collector in twins.values():
                wait_notices_on(collector)
            prom.wait_for_target_up()
            yield Pair(twins, agent, devices, prom, am, webhook)
    finally:
        if agent is not None:
            agent.kill()
        for collector in twins.values():
            collector.kill()
        devices.close()


def chains(pair: Pair, position: int) -> list[list[tuple[int, str, int | None]]]:
    """Per live twin: (post told, notice id, post that acked) of the episode of ``position``."""
    return [
        [
            (n["position"], n["id"], n["acked_by"])
            for episode in branch(collector)["notices"]
            if episode["kind"] == "post_empty" and episode["position"] == position
            for n in episode["notices"]
        ]
        for collector in pair.twins.values()
        if collector.proc is not None
    ]


def repeats(pair: Pair) -> int:
    """Notices the agent answered as already delivered."""
    return pair.agent.log_path.read_text().count("delivered already")


def unanswered(pair: Pair) -> list[dict[str, Any]]:
    return pair.prometheus.query(
        f'branchwatch_notice_unanswered_timestamp_seconds{{branch="{BRANCH}"}}'
    )


def notice_alerts(pair: Pair) -> list[dict[str, Any]]:
    return [a for a in pair.prometheus.alerts() if a["labels"]["alertname"] == ALERT]


def test_both_twins_send_the_intercom_shows_each_notice_once_and_a_kill_loses_no_page(
    pair: Pair,
) -> None:
    devices = pair.devices
    # 1. Post 2 left: post 3 is told, by both twins under one id, and shown once.
    devices.play(devices.intercom, "OUT 2")
    [note] = wait_until(devices.notes, 10, "the notice to post 3")
    assert note.position == 3
    wait_until(lambda: chains(pair, 2) == [[(3, note.id, None)]] * 2, 10, "both twins told 3")
    wait_until(lambda: repeats(pair) == 1, 10, "the agent answered the second copy")
    # Its ack, an event both twins receive, closes the step in both.
    devices.play(devices.intercom, f"ACK 3 {note.id}", "IN 2 s.zhao")
    wait_until(
        lambda: all(notice_totals(c)["resolved"] == 1 for c in pair.twins.values()),
        10,
        "the episode resolved in both twins",
    )
    for collector in pair.twins.values():
        assert notice_totals(collector) == {
            "sent": 1, "acked": 1, "escalated": 0, "unanswered": 0, "resolved": 1,
        }  # fmt: skip

    # 2. Post 1 left and nobody answers: post 3, post 4, the all-call (post 2); unanswered.
    devices.play(devices.intercom, "OUT 1")
    wait_until(
        lambda: all(notice_totals(c)["unanswered"] == 1 for c in pair.twins.values()),
        1.0 + 3 * ACK_TIMEOUT + 10,
        "both chains unanswered",
    )
    chain_a, chain_b = chains(pair, 1)
    assert chain_a == chain_b  # the same notices, the same ids
    assert [position for position, _, _ in chain_a] == [3, 4, 2]
    shown = [(n.position, n.id) for n in devices.notes()]
    assert shown == [(3, note.id)] + [(p, i) for p, i, _ in chain_a]  # each notice once
    wait_until(lambda: repeats(pair) == 4, 10, "the agent answered every second copy")
    # Both twins export the chain; Prometheus makes one alert of it, and pages once.
    series = wait_until(lambda: len(unanswered(pair)) == 2 and unanswered(pair), TIMEOUT,
                        "both twins' unanswered series in Prometheus")  # fmt: skip
    assert {row["metric"]["instance"] for row in series} == {
        f"127.0.0.1:{c.port}" for c in pair.twins.values()
    }
    [firing] = wait_until(
        lambda: [a for a in notice_alerts(pair) if a["state"] == "firing"], TIMEOUT, "the page"
    )
    assert (firing["labels"]["region"], firing["labels"]["branch"]) == (REGION, BRANCH)
    assert firing["labels"]["position"] == "1" and firing["labels"]["severity"] == "critical"
    wait_until(lambda: pair.webhook.alerts(alertname=ALERT), TIMEOUT, "the page at the webhook")

    # 3. SIGKILL twin a: the page stays firing, active since the same instant.
    dead = pair.twins["a"]
    instance = f"127.0.0.1:{dead.port}"
    dead.kill()
    wait_until(
        lambda: pair.prometheus.query(f'up{{instance="{instance}"}} == 0'), TIMEOUT, "a down"
    )
    down = time.time()
    wait_until(lambda: rules_evaluated_since(pair, down + 3), TIMEOUT, "three more evaluations")
    assert [(a["state"], a["activeAt"]) for a in notice_alerts(pair)] == [
        ("firing", firing["activeAt"])
    ]
    sent = [(a["status"], a["labels"]["severity"]) for _, a in pair.webhook.alerts(alertname=ALERT)]
    assert sent and set(sent) == {("firing", "critical")}, sent  # never resolved, one page
    assert len(devices.notes()) == 4  # nothing was sent twice, nothing new

    # 4. The surviving twin carries on: post 1 staffed again resolves the page.
    devices.play(devices.intercom, "IN 1 s.li")
    wait_until(
        lambda: (
            ("resolved", "critical")
            in [
                (a["status"], a["labels"]["severity"])
                for _, a in pair.webhook.alerts(alertname=ALERT)
            ]
        ),
        TIMEOUT,
        "the page resolved through twin b",
    )
    assert notice_totals(pair.twins["b"])["resolved"] == 2


def rules_evaluated_since(pair: Pair, when: float) -> bool:
    """Prometheus evaluated the alert rules after ``when`` (by their ALERTS series)."""
    rows = pair.prometheus.query(f'max(timestamp(ALERTS{{alertname="{ALERT}"}}))')
    return bool(rows) and float(rows[0]["value"][1]) > when
