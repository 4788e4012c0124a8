"""The floor behind the board query test: an HA pair of collectors, fed, and two Prometheus.

Two collectors (twin a sends floor notices, twin b has them off, as a region's pair runs)
receive the same events: three branches in two regions, fed through a real Mosquitto:
north/br-0001 has post 1 empty, customers waiting past the warning target, ratings,
a device fault and a device down; the others are staffed and serving. One Prometheus
scrapes both twins every second and evaluates the region rules the wall's tiles read
(alerts/rules/region.rules.yml) and one always-firing test rule, so ``ALERTS`` exists;
another scrapes twin a alone. Events come in two phases, the second after Prometheus has
seen the first, so ``increase()`` and ``rate()`` have something to measure. Twin a sends
floor notices with short timings: br-0001's post 1 chain (an all-call, nobody answers)
ends unanswered, and then an unsatisfied rating's follow-up is acknowledged on the
intercom.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.build import RULES_DIR
from alerts.region import BRANCHES_OPEN
from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker
from branchwatch.contract import Status, encode, metrics, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.messages import DeviceStatus, SpoolStatus
from tests.promstack import PrometheusProcess
from tests.support import CollectorProcess, FakeAgent, require_binary, wait_until

NOW = float(int(time.time()))
FLOOR_BRANCH = ("north", "br-0001")
# Short notice timings so a chain is exhausted within seconds, after Prometheus has seen
# the branch (its unanswered count then rises from 0), and the test acks in time.
ACK_TIMEOUT = 8.0
NOTICES_CONFIG = f"[notices]\npost_empty_seconds = 1\nack_timeout_seconds = {ACK_TIMEOUT}\n"
TWIN_B_CONFIG = "[notices]\nenabled = false\n"  # one twin of a pair sends the notices
ALWAYS_FIRING_RULES = f"""\
groups:
  - name: dashboard-test
    rules:
      - alert: BranchwatchDashboardTestAlways
        expr: {metrics.BRANCH_OPEN.name} == 1
        labels:
          severity: info
"""


@dataclass
class Branch:
    agent: FakeAgent
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, *script: tuple[float, type[ev.Event], dict[str, Any]]) -> None:
        self.agent.publish(
            [
                kind(v=1, seq=next(self.seq), ts=NOW + offset, device="queue-1", **fields)
                for offset, kind, fields in script
            ],
            batch=True,
        )

    def send_now(self, kind: type[ev.Event], **fields: Any) -> None:
        """One event stamped with the current time (the notice engine acts on live time)."""
        self.send((time.time() - NOW, kind, fields))

    def status(self, devices: dict[str, DeviceStatus], spool: int, refused: int = 0) -> None:
        topic = topic_for(self.agent.region, self.agent.branch, self.agent.agent, "status")
        status = Status(
            v=1,
            state="online",
            session=1,
            ts=time.time(),
            version="0.1.0",
            devices=devices,
            spool=SpoolStatus(depth=spool, oldest_ts=NOW - 30 if spool else None, refused=refused),
        )
        self.agent.publish_raw(topic, encode(status), retain=True)


def opening(staff_post_1: bool) -> list[tuple[float, type[ev.Event], dict[str, Any]]]:
    script: list[tuple[float, type[ev.Event], dict[str, Any]]] = [
        (-3600, ev.BranchOpened, {}),
        (-3590, ev.CounterOpened, {"counter": "c1", "kind": "high", "teller": "t1"}),
        (-3590, ev.CounterOpened, {"counter": "c2", "kind": "low", "teller": "t2"}),
        (-3580, ev.PositionStaffed, {"position": 2, "staff": "s2"}),
        (-3580, ev.PositionStaffed, {"position": 5, "staff": "t1"}),
    ]
    if staff_post_1:
        script.append((-3580, ev.PositionStaffed, {"position": 1, "staff": "s1"}))
    return script + transfer_and_handoff(-3500, "P1")


def transfer_and_handoff(
    at: float, ticket: str
) -> list[tuple[float, type[ev.Event], dict[str, Any]]]:
    """A cash ticket referred to non_cash and served there; post 1 calls post 7 (answered
    after 10 s, or 40 s later in the day). In both phases, so increase() sees each series
    grow: the transfer and hand-off series only appear with their first event."""
    answered = 10 if at < -3000 else 40
    return [
        (at, ev.TicketIssued, {"ticket": ticket, "service": "cash"}),
        (at + 10, ev.TicketTransferred, {"ticket": ticket, "service": "non_cash"}),
        (at + 100, ev.TicketCalled, {"ticket": ticket, "counter": "c2"}),  # waited 90 s
        (at + 110, ev.ServiceStarted, {"ticket": ticket, "counter": "c2"}),
        (at + 200, ev.ServiceEnded, {"ticket": ticket, "counter": "c2"}),
        (at + 300, ev.IntercomCall, {"from_position": 1, "to_position": 7, "reason": "vip"}),
        (at + 300 + answered, ev.IntercomAck, {"position": 7}),
    ]


def a_busy_hour(branch: str) -> list[tuple[float, type[ev.Event], dict[str, Any]]]:
    """Tickets called within and beyond target, ratings, someone still waiting long."""
    return [
        (-2000, ev.TicketIssued, {"ticket": f"{branch}-A1", "service": "cash"}),
        (-1700, ev.TicketCalled, {"ticket": f"{branch}-A1", "counter": "c1"}),  # 5 min
        (-1690, ev.ServiceStarted, {"ticket": f"{branch}-A1", "counter": "c1"}),
        (-1500, ev.ServiceEnded, {"ticket": f"{branch}-A1", "counter": "c1"}),
        (-1499, ev.EvaluationRequested, {"counter": "c1"}),
        (-1495, ev.EvaluationSubmitted, {"counter": "c1", "rating": "very_satisfied"}),
        (-1400, ev.TicketIssued, {"ticket": f"{branch}-B1", "service": "non_cash"}),
        (-100, ev.TicketCalled, {"ticket": f"{branch}-B1", "counter": "c2"}),  # 21 min 40 s
        (-90, ev.ServiceStarted, {"ticket": f"{branch}-B1", "counter": "c2"}),
        (-30, ev.ServiceEnded, {"ticket": f"{branch}-B1", "counter": "c2"}),
        (-29, ev.EvaluationRequested, {"counter": "c2"}),
        (-25, ev.EvaluationSubmitted, {"counter": "c2", "rating": "unsatisfied"}),
        (-20, ev.EvaluationRequested, {"counter": "c1"}),
        (-1300, ev.TicketIssued, {"ticket": f"{branch}-A2", "service": "cash"}),  # waiting
        (-60, ev.TicketIssued, {"ticket": f"{branch}-V1", "service": "vip", "vip": True}),
        *transfer_and_handoff(-900, f"{branch}-P2"),
    ]


@dataclass(frozen=True)
class Stack:
    pair: PrometheusProcess  # scrapes both twins (and evaluates the rules)
    single: PrometheusProcess  # scrapes twin a alone
    twins: tuple[str, str]  # the instance labels of twin a and twin b
    settled: float  # each server scraped each twin after the last change before this


def collector(mosquitto: EmbeddedBroker, workdir: Path, name: str, config: str) -> CollectorProcess:
    workdir.mkdir()
    (workdir / "collector.toml").write_text(config)
    extra = ["--config", str(workdir / "collector.toml")]
    return CollectorProcess(mosquitto.url, workdir, name, extra).start()


@contextmanager
def running(tmp_path: Path) -> Iterator[Stack]:
    """One broker, an HA pair and two Prometheus, fed (then stopped on leaving)."""
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    rules = tmp_path / "always.rules.yml"
    rules.write_text(ALWAYS_FIRING_RULES)
    agents: list[FakeAgent] = []
    twins: list[CollectorProcess] = []
    with EmbeddedBroker("mosquitto") as mosquitto:
        try:
            twins.append(collector(mosquitto, tmp_path / "a", "dashboards-a", NOTICES_CONFIG))
            twins.append(collector(mosquitto, tmp_path / "b", "dashboards-b", TWIN_B_CONFIG))
            with (
                PrometheusProcess(
                    [twin.url for twin in twins],
                    rule_files=[rules, RULES_DIR / "region.rules.yml"],
                    workdir=tmp_path / "prom-pair",
                ) as prom,
                PrometheusProcess([twins[0].url], workdir=tmp_path / "prom-single") as single,
            ):
                proms = (prom, single)
                for server in proms:
                    server.wait_for_target_up()
                branches = {}
                for region, branch in (
                    ("north", "br-0001"),
                    ("north", "br-0002"),
                    ("south", "br-0101"),
                ):
                    agent = FakeAgent(mosquitto.port, region, branch, "edge-1")
                    agents.append(agent)
                    branches[branch] = Branch(agent)
                feed(proms, branches)
                notices(proms, twins[0], branches[FLOOR_BRANCH[1]])
                # The wall's tiles read the region rules: one evaluation after all of it.
                seen = time.time()
                wait_until(
                    lambda: (
                        float(prom.query(f"max(timestamp({BRANCHES_OPEN}))")[0]["value"][1]) > seen
                    ),
                    10,
                    "the region rules evaluated after the last change",
                )
                scraped_after(proms, seen)
                a, b = (f"127.0.0.1:{twin.port}" for twin in twins)
                yield Stack(pair=prom, single=single, twins=(a, b), settled=time.time())
        finally:
            for agent in agents:
                agent.close()
            for twin in twins:
                twin.kill()


def on_every_twin(prom: PrometheusProcess, expr: str, minimum: int = 1) -> bool:
    """``expr`` has at least ``minimum`` series from each collector ``prom`` scrapes."""
    rows = prom.query(f"count by (instance) ({expr})")
    return len(rows) == len(prom.scrape_targets) and all(
        float(row["value"][1]) >= minimum for row in rows
    )


def scraped_after(proms: tuple[PrometheusProcess, ...], moment: float, scrapes: int = 1) -> None:
    """Until every server has scraped every collector ``scrapes`` seconds after ``moment``."""

    def scraped(prom: PrometheusProcess) -> bool:
        return float(prom.query("min(timestamp(up))")[0]["value"][1]) >= moment + scrapes

    wait_until(
        lambda: all(scraped(prom) for prom in proms),
        10,
        f"{scrapes} scrape(s) of every collector after the last change",
    )


def feed(proms: tuple[PrometheusProcess, ...], branches: dict[str, Branch]) -> None:
    up = {"queue-1": DeviceStatus(kind="queue", link="up")}
    for name, branch in branches.items():
        branch.send(*opening(staff_post_1=name != FLOOR_BRANCH[1]))
        branch.status(up, spool=0)
    # A message that breaks the contract, so rejects have a reason to show.
    branches["br-0002"].agent.publish_raw("bw/v1/north/br-0002/edge-1/events", b"{not json")
    wait_until(
        lambda: all(on_every_twin(prom, metrics.EVALUATIONS.name, 3 * 2 * 4) for prom in proms),
        20,
        "Prometheus to see every branch's counters from every collector (phase 1)",
    )
    for name, branch in branches.items():
        branch.send(*a_busy_hour(name))
    floor = branches[FLOOR_BRANCH[1]]
    floor.send((-10, ev.DeviceFault, {"fault": "paper_low"}))
    floor.status(
        {
            "queue-1": DeviceStatus(kind="queue", link="up"),
            "pad-1": DeviceStatus(kind="evaluator", link="down"),
        },
        spool=3,
        refused=2,  # its disk was full for a moment
    )
    branches["br-0002"].agent.publish_raw("bw/v1/north/br-0002/edge-1/events", b"[]]")
    unsatisfied = f'increase({metrics.EVALUATIONS.name}{{rating="unsatisfied"}}[1m]) > 0'
    wait_until(
        lambda: (
            all(
                on_every_twin(prom, f"{metrics.DEVICE_FAULT.name} == 1")
                and on_every_twin(prom, unsatisfied)
                for prom in proms
            )
            and proms[0].query('ALERTS{alertstate="firing"}')
        ),
        20,
        "Prometheus to see phase 2 (faults, ratings) and the test alert firing",
    )
    # Two more scrapes after the last change: rate() and increase() have their samples.
    scraped_after(proms, time.time(), scrapes=2)


def notices(
    proms: tuple[PrometheusProcess, ...], collector: CollectorProcess, floor: Branch
) -> None:
    """br-0001: post 1's chain ends unanswered; an unsatisfied rating's follow-up is acked
    (by ``collector``, the twin that sends notices)."""
    path = "/branches/{}/{}".format(*FLOOR_BRANCH)

    def episodes(kind: str) -> list[dict[str, Any]]:
        return [e for e in collector.api(path)["branch"]["notices"] if e["kind"] == kind]

    wait_until(
        lambda: any(e["stage"] == "unanswered" for e in episodes("post_empty")),
        ACK_TIMEOUT + 15,
        "post 1's notice chain at br-0001 to end unanswered",
    )
    rated = time.time()
    floor.send_now(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied")

    def follow_up() -> dict[str, Any] | None:
        sent = [n for e in episodes("unsatisfied") for n in e["notices"] if n["sent_ts"] >= rated]
        return sent[0] if sent else None

    notice = wait_until(follow_up, ACK_TIMEOUT / 2, "the follow-up of the unsatisfied rating")
    floor.send_now(ev.IntercomAck, position=notice["position"], notice=notice["id"])
    wait_until(
        lambda: all(
            prom.query(f'{metrics.NOTICE_ACK_SECONDS.count}{{branch="{FLOOR_BRANCH[1]}"}} > 0')
            and prom.query(f'{metrics.NOTICE_UNANSWERED.name}{{branch="{FLOOR_BRANCH[1]}"}}')
            for prom in proms
        ),
        20,
        "Prometheus to see the acknowledged follow-up and the unanswered chain",
    )
