"""End to end: Mosquitto → collector → Prometheus (rules) → Alertmanager → a webhook.

The rules are built by alerts.build from the same config as the committed ones, with
thresholds of seconds instead of minutes; Alertmanager runs the example config of
deploy/alertmanager with every receiver pointed at the test's webhook. Each test drives
one branch of its own with scripted contract events (a FakeAgent), so the stack is shared.
Two collectors, one per region: north's sends floor notices after the default minute
(never within these tests), east's after a second, so its chains end unanswered in
seconds.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from alerts import build
from alerts.config import DEFAULT
from alerts.groups import FILES
from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker
from branchwatch.contract import Status, encode, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.messages import DeviceStatus, SpoolStatus
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from tests.promstack import (
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookReceiver,
    example_alertmanager_config,
)
from tests.support import CollectorProcess, FakeAgent, require_binary, wait_until

pytestmark = pytest.mark.integration

REGION = "north"
NOTICE_REGION = "east"  # no subtree in the example config: pages go to central-pager
COLLECTOR_CONFIGS = {
    REGION: f'[mqtt]\nregions = ["{REGION}"]\n',
    NOTICE_REGION: f'[mqtt]\nregions = ["{NOTICE_REGION}"]\n'
    "[notices]\npost_empty_seconds = 1\nack_timeout_seconds = 1\n",
}
# Seconds instead of minutes; everything else (expressions, labels, annotations) as shipped.
# Post 1's backstop comes well after east's notice chain (1 s, then 1 s per step) has ended.
SHORT = DEFAULT.replace(
    thresholds=DEFAULT_THRESHOLDS.replace(
        greeter_empty_seconds=8,
        wait_target_seconds=3,
        wait_warning_seconds=3,
        wait_critical_seconds=3600,
    ),
    post_for_seconds=1,
    notice_unanswered_for_seconds=1,
    wait_for_seconds=1,
    collector_api_url="http://collector.test:9108",
)
ALERT_TIMEOUT = 20.0


@dataclass
class Stack:
    broker: EmbeddedBroker
    collector: CollectorProcess  # north's
    notifying: CollectorProcess  # east's, quick floor notices
    prometheus: PrometheusProcess
    alertmanager: AlertmanagerProcess
    webhook: WebhookReceiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    work = tmp_path_factory.mktemp("alerts-e2e")
    rules = build.write(SHORT, work / "rules")
    with EmbeddedBroker("mosquitto", workdir=work) as broker, WebhookReceiver() as webhook:
        am_config = example_alertmanager_config(webhook.url, work / "alertmanager.yml")
        collectors = []
        try:
            for region, text in COLLECTOR_CONFIGS.items():
                (work / region).mkdir()
                config = work / region / "collector.toml"
                config.write_text(text)
                collectors.append(
                    CollectorProcess(
                        broker.url, work / region, f"alerts-e2e-{region}", ["--config", str(config)]
                    ).start()
                )
            targets = [c.url for c in collectors]
            with (
                AlertmanagerProcess(am_config, work / "am") as am,
                PrometheusProcess(targets, rules, am.url, workdir=work / "prom") as prom,
            ):
                prom.wait_for_target_up()
                north, east = collectors
                yield Stack(broker, north, east, prom, am, webhook)
        finally:
            for collector in collectors:
                collector.kill()


class Branch:
    """One branch's agent: events with increasing seq, event time = now."""

    def __init__(self, stack: Stack, branch: str, region: str = REGION) -> None:
        self.branch = branch
        self.agent = FakeAgent(stack.broker.port, region, branch, "edge-1")
        self.seq = itertools.count(1)
        online = Status(
            v=1, state="online", session=1, ts=time.time(), version="test",
            devices={"queue-1": DeviceStatus(kind="queue", link="up")}, spool=SpoolStatus(),
        )  # fmt: skip
        self.agent.publish_raw(topic_for(region, branch, "edge-1", "status"), encode(online))

    def send(self, event: type[ev.Event], **fields: Any) -> None:
        self.agent.publish([event(v=1, seq=next(self.seq), ts=time.time(), device="d1", **fields)])

    def open_staffed(self) -> None:
        """Open the branch with anna at post 1 and ben at post 2."""
        self.send(ev.BranchOpened)
        self.send(ev.PositionStaffed, position=1, staff="anna")
        self.send(ev.PositionStaffed, position=2, staff="ben")

    def close(self) -> None:
        self.agent.close()


@pytest.fixture
def branch(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Branch]:
    name = f"b-{request.node.name.removeprefix('test_')[:20].replace('_', '-')}"
    opened = Branch(stack, name)
    yield opened
    opened.close()


def notified(stack: Stack, status: str, **labels: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for a webhook notification holding an alert with ``labels`` in ``status``."""

    def find() -> tuple[dict[str, Any], dict[str, Any]] | None:
        hits = [(n, a) for n, a in stack.webhook.alerts(**labels) if a["status"] == status]
        return hits[-1] if hits else None

    try:
        found: tuple[dict[str, Any], dict[str, Any]] = wait_until(
            find, ALERT_TIMEOUT, f"{status} {labels} at the webhook"
        )
    except AssertionError:
        raise AssertionError(
            f"no {status} {labels} at the webhook; Prometheus alerts: "
            f"{stack.prometheus.alerts()}\nAlertmanager: {stack.alertmanager.alerts()}\n"
            f"webhook: {stack.webhook.notifications}"
        ) from None
    return found


def test_greeter_post_left_empty_pages_and_resolves_when_staffed(
    stack: Stack, branch: Branch
) -> None:
    branch.open_staffed()
    wait_until(
        lambda: stack.prometheus.query(
            f'branchwatch_position_staffed{{branch="{branch.branch}", position="1"}} == 1'
        ),
        10,
        "post 1 staffed in Prometheus",
    )
    assert not stack.webhook.alerts(branch=branch.branch)

    vacated = time.time()
    branch.send(ev.PositionVacated, position=1, staff="anna")
    labels = {"alertname": "BranchwatchGreeterPostEmpty", "branch": branch.branch}
    page, alert = notified(stack, "firing", **labels)
    assert time.time() - vacated >= SHORT.thresholds.greeter_empty_seconds
    assert page["receiver"] == "north-pager"  # critical, region north: the region's pager
    assert page["groupLabels"] == {"region": REGION, "branch": branch.branch}
    assert alert["labels"]["region"] == REGION
    assert alert["labels"]["position"] == "1"
    assert alert["labels"]["severity"] == "critical"
    notes = alert["annotations"]
    assert notes["summary"].startswith(f"{REGION}/{branch.branch}: post 1 (greeting")
    assert notes["branch_url"] == (
        f"http://collector.test:9108/api/v1/branches/{REGION}/{branch.branch}"
    )
    assert notes["runbook_url"].endswith("#branchwatchgreeterpostempty")
    # the responder's link works against the real collector: post 1 empty since the vacate
    view = stack.collector.api(f"/branches/{REGION}/{branch.branch}")["branch"]
    [post1] = [p for p in view["positions"] if p["position"] == 1]
    assert post1["staff"] == [] and post1["since"] == pytest.approx(vacated, abs=1)

    branch.send(ev.PositionStaffed, position=1, staff="carl")
    resolved, alert = notified(stack, "resolved", **labels)
    assert resolved["receiver"] == "north-pager"
    assert alert["labels"]["position"] == "1"
    assert not [a for a in stack.prometheus.alerts() if a["labels"].get("branch") == branch.branch]


def test_customer_waiting_too_long_warns_and_resolves_when_called(
    stack: Stack, branch: Branch
) -> None:
    branch.open_staffed()
    branch.send(ev.CounterOpened, counter="c1", kind="high", teller="t1")
    issued = time.time()
    branch.send(ev.TicketIssued, ticket="A001", service="cash")

    labels = {"alertname": "BranchwatchCustomerWaitTooLong", "branch": branch.branch}
    note, alert = notified(stack, "firing", **labels)
    assert time.time() - issued >= SHORT.thresholds.wait_warning_seconds
    assert note["receiver"] == "north-ops"  # a warning: the region's operations channel
    assert alert["labels"]["service"] == "cash"
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["region"] == REGION
    assert "a cash customer has waited" in alert["annotations"]["summary"]
    assert not stack.webhook.alerts(alertname="BranchwatchGreeterPostEmpty", branch=branch.branch)

    branch.send(ev.TicketCalled, ticket="A001", counter="c1")
    _, alert = notified(stack, "resolved", **labels)
    assert alert["labels"]["service"] == "cash"


def test_a_closed_branch_does_not_page(stack: Stack, branch: Branch) -> None:
    control = Branch(stack, "b-closed-control")  # open, left empty at the same moment
    try:
        for b in (branch, control):
            b.send(ev.BranchOpened)
            b.send(ev.PositionStaffed, position=1, staff="anna")
        branch.send(ev.BranchClosed)
        for b in (branch, control):
            b.send(ev.PositionVacated, position=1, staff="anna")
        notified(stack, "firing", alertname="BranchwatchGreeterPostEmpty", branch=control.branch)
    finally:
        control.close()
    # By the time the open branch paged, the closed one was never even pending.
    closed = branch.branch
    assert stack.prometheus.query(f'branchwatch_branch_open{{branch="{closed}"}} == 0')
    assert stack.prometheus.query(f'branchwatch_position_staffed{{branch="{closed}"}} == 0')
    assert not stack.prometheus.query(f'count_over_time(ALERTS{{branch="{closed}"}}[5m])')
    assert not stack.webhook.alerts(branch=closed)


def test_every_rule_evaluates_cleanly_against_the_real_collector(
    stack: Stack, branch: Branch
) -> None:
    branch.send(ev.BranchOpened)
    branch.send(ev.TicketIssued, ticket="A001", service="cash")

    def rules() -> list[dict[str, Any]]:
        return [rule for group in stack.prometheus.rules() for rule in group["rules"]]

    wait_until(lambda: all(r["health"] != "unknown" for r in rules()), 10, "every rule evaluated")
    groups = {g["name"] for g in stack.prometheus.rules()}
    # Every generated file's group is loaded, whatever files the build writes.
    assert groups == {group(DEFAULT)["name"] for group in FILES.values()}
    assert len(groups) == len(FILES) >= 6
    assert [(r["name"], r["lastError"]) for r in rules() if r["health"] != "ok"] == []
    query = f'region:branchwatch_queue_waiting:sum{{region="{REGION}"}} >= 1'
    waiting = wait_until(lambda: stack.prometheus.query(query), 10, "a waiting customer")
    assert waiting[0]["metric"] == {"__name__": "region:branchwatch_queue_waiting:sum",
                                    "region": REGION}  # fmt: skip


def test_an_unanswered_notice_chain_pages_instead_of_the_backstop(stack: Stack) -> None:
    east = Branch(stack, "b-notices", NOTICE_REGION)
    try:
        east.send(ev.BranchOpened)
        for position, staff in ((1, "anna"), (2, "ben"), (3, "cara")):
            east.send(ev.PositionStaffed, position=position, staff=staff)
        east.send(ev.PositionVacated, position=1, staff="anna")
        # Post 3 is told, then (no ack) the all-call; nobody answers: on-call's turn.
        notice = {"alertname": "BranchwatchFloorNoticeUnanswered", "branch": east.branch}
        page, alert = notified(stack, "firing", **notice)
        assert page["receiver"] == "central-pager"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["position"] == "1" and alert["labels"]["kind"] == "post_empty"
        assert alert["annotations"]["runbook_url"].endswith("#branchwatchfloornoticeunanswered")
        path = f"/branches/{NOTICE_REGION}/{east.branch}"
        [episode] = stack.notifying.api(path)["branch"]["notices"]
        assert episode["stage"] == "unanswered" and episode["position"] == 1
        assert [n["position"] for n in episode["notices"]] == [3, 2]  # backfill, all-call

        # The backstop fires in Prometheus once post 1 passes its threshold too, and
        # Alertmanager holds it back: one page for one empty door.
        backstop = "BranchwatchGreeterPostEmpty"

        def backstop_state() -> str | None:
            found = [
                a["status"]["state"]
                for a in stack.alertmanager.alerts()
                if a["labels"]["alertname"] == backstop and a["labels"]["branch"] == east.branch
            ]
            return found[0] if found else None

        wait_until(lambda: backstop_state() == "suppressed", ALERT_TIMEOUT, "backstop held back")
        east.send(ev.PositionStaffed, position=1, staff="dan")
        notified(stack, "resolved", **notice)
        # Never paged (Alertmanager may still tell the pager it resolved).
        sent = stack.webhook.alerts(alertname=backstop, branch=east.branch)
        assert [a["status"] for _, a in sent if a["status"] == "firing"] == []
    finally:
        east.close()
