"""The example Alertmanager config on a real Alertmanager: grouping, routing, inhibition."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.promstack import AlertmanagerProcess, WebhookReceiver, example_alertmanager_config
from tests.support import require_binary, wait_until

pytestmark = pytest.mark.integration


def alert(name: str, severity: str, concern: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, "concern": concern, **labels},
        "annotations": {"summary": f"{name} {labels}"},
    }


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[AlertmanagerProcess, WebhookReceiver]]:
    with WebhookReceiver() as webhook:
        config = example_alertmanager_config(webhook.url, tmp_path / "alertmanager.yml")
        with AlertmanagerProcess(config, tmp_path / "am") as am:
            yield am, webhook


def test_agent_offline_holds_back_the_branch_floor_alerts_only(
    stack: tuple[AlertmanagerProcess, WebhookReceiver],
) -> None:
    am, webhook = stack
    b1 = {"region": "north", "branch": "b1"}
    b2 = {"region": "north", "branch": "b2"}
    am.post_alerts([
        alert("BranchwatchAgentOffline", "critical", "fleet", agent="pc1", **b1),
        alert("BranchwatchGreeterPostEmpty", "critical", "floor", position="1", **b1),
        alert("BranchwatchSatisfactionLow", "warning", "service", **b1),
        alert("BranchwatchDeviceFault", "warning", "fleet", device="q1", fault="paper_out", **b1),
        alert("BranchwatchGreeterPostEmpty", "critical", "floor", position="1", **b2),
    ])  # fmt: skip
    wait_until(
        lambda: webhook.alerts(alertname="BranchwatchAgentOffline") and webhook.alerts(branch="b2"),
        15,
        "notifications for b1's agent and b2's post",
    )

    def state(name: str, branch: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            a["status"]
            for a in am.alerts()
            if a["labels"]["alertname"] == name and a["labels"]["branch"] == branch
        ]
        assert len(found) == 1, found
        return found[0]

    for name in ("BranchwatchGreeterPostEmpty", "BranchwatchSatisfactionLow"):
        assert state(name, "b1")["state"] == "suppressed"
        assert state(name, "b1")["inhibitedBy"]
    assert state("BranchwatchDeviceFault", "b1")["state"] == "suppressed"
    assert state("BranchwatchGreeterPostEmpty", "b2")["state"] == "active"
    assert state("BranchwatchAgentOffline", "b1")["state"] == "active"

    [(page, _)] = webhook.alerts(branch="b1")  # one group per branch, only the agent alert
    assert page["path"] == "/north-pager" and page["receiver"] == "north-pager"
    assert page["groupLabels"] == b1
    assert [a["labels"]["alertname"] for a in page["alerts"]] == ["BranchwatchAgentOffline"]
    [(other, _)] = webhook.alerts(branch="b2")
    assert other["groupLabels"] == b2 and other["receiver"] == "north-pager"


def test_critical_wait_holds_back_the_warning_of_the_same_queue(
    stack: tuple[AlertmanagerProcess, WebhookReceiver],
) -> None:
    am, webhook = stack
    where = {"region": "east", "branch": "b3"}
    name = "BranchwatchCustomerWaitTooLong"
    am.post_alerts([
        alert(name, "critical", "floor", service="cash", **where),
        alert(name, "warning", "floor", service="cash", **where),
        alert(name, "warning", "floor", service="vip", **where),
    ])  # fmt: skip
    wait_until(
        lambda: webhook.alerts(service="cash") and webhook.alerts(service="vip"),
        15,
        "notifications for the cash and vip queues",
    )
    sent = {
        (n["receiver"], a["labels"]["service"], a["labels"]["severity"])
        for n, a in webhook.alerts(branch="b3")
    }
    # east has no subtree: critical → central pager, warning → ops centre; the cash
    # warning is inhibited by the cash critical, the vip warning is not.
    assert sent == {("central-pager", "cash", "critical"), ("ops-centre", "vip", "warning")}


def test_a_silence_as_documented_mutes_one_branch(
    stack: tuple[AlertmanagerProcess, WebhookReceiver],
) -> None:
    am, webhook = stack
    amtool = require_binary("amtool", "/usr/bin/amtool")
    result = subprocess.run(
        [amtool, f"--alertmanager.url={am.url}", "silence", "add", "region=north",
         "branch=b17", "--duration=72h", "--author=jdoe", "--comment=renovation, OPS-123"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    silence_id = result.stdout.strip()
    am.post_alerts([
        alert("BranchwatchGreeterPostEmpty", "critical", "floor", region="north", branch="b17"),
        alert("BranchwatchGreeterPostEmpty", "critical", "floor", region="north", branch="b18"),
    ])  # fmt: skip
    wait_until(lambda: webhook.alerts(branch="b18"), 15, "b18's page")
    [muted] = [a for a in am.alerts() if a["labels"]["branch"] == "b17"]
    assert muted["status"]["state"] == "suppressed"
    assert muted["status"]["silencedBy"] == [silence_id]
    assert not webhook.alerts(branch="b17")


def test_an_unanswered_post_1_chain_holds_back_the_backstop_of_that_post_only(
    stack: tuple[AlertmanagerProcess, WebhookReceiver],
) -> None:
    am, webhook = stack
    notice, backstop = "BranchwatchFloorNoticeUnanswered", "BranchwatchGreeterPostEmpty"
    told = {"region": "north", "kind": "post_empty"}
    am.post_alerts([
        # b1: post 1's chain exhausted and the backstop too: one page, the notice alert.
        alert(notice, "critical", "floor", branch="b1", position="1", **told),
        alert(backstop, "critical", "floor", region="north", branch="b1", position="1"),
        # b2: post 1 empty 10 min, its chain not exhausted (acked, nobody came): pages.
        alert(backstop, "critical", "floor", region="north", branch="b2", position="1"),
        # b3: post 2's chain exhausted (a warning, no position) does not hold back post 1.
        alert(notice, "warning", "floor", branch="b3", **told),
        alert(backstop, "critical", "floor", region="north", branch="b3", position="1"),
    ])  # fmt: skip
    wait_until(
        lambda: all(webhook.alerts(branch=b) for b in ("b1", "b2", "b3")),
        15,
        "notifications for b1, b2 and b3",
    )
    states = {
        (a["labels"]["alertname"], a["labels"]["branch"]): a["status"]["state"] for a in am.alerts()
    }
    assert states == {
        (notice, "b1"): "active",
        (backstop, "b1"): "suppressed",
        (backstop, "b2"): "active",
        (notice, "b3"): "active",
        (backstop, "b3"): "active",
    }
    [(page, _)] = webhook.alerts(branch="b1")
    assert page["receiver"] == "north-pager"
    assert [a["labels"]["alertname"] for a in page["alerts"]] == [notice]
    sent = {(n["receiver"], a["labels"]["alertname"]) for n, a in webhook.alerts(branch="b3")}
    assert sent == {("north-pager", backstop), ("north-ops", notice)}
