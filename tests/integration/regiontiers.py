"""The parts of tests/integration/test_region_tiers.py: the known floor of each region,
agents that log in to the NATS cluster, the collector pairs, the Prometheus servers made
from deploy/prometheus/, and the queries the tests ask them.

Each region has two branches, the same shape, with counts that grow with the region's
index ``i`` so no two regions (and no region and the bank) share a figure:

- ``{region}-1``: open an hour ago, post 1 never staffed (the greeter page), ``i + 1``
  customers waiting for 5 minutes;
- ``{region}-2``: posts 1 and 2 staffed, one cash customer waiting 25 minutes (the
  wait warning, past 20, short of the 30-minute critical);
- tickets called after 300 s and 1000 s (branch 1), 120 s and ``i`` times 600 s
  (branch 2): ``i + 2`` of ``i + 3`` within the 15-minute target;
- ratings: ``i + 1`` very satisfied and one unsatisfied (branch 1), one satisfied
  (branch 2), and one request nobody rated.

Opening and staffing come first (phase 1); tickets and ratings only once Prometheus has
scraped every counter at 0 (phase 2), so ``increase()`` counts every one of them.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from alerts import region as rules
from branchwatch.contract import Event, Status, encode, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.messages import DeviceStatus, SpoolStatus
from dashboards.build import build_all
from tests.natscluster import NatsCluster
from tests.promstack import (
    EXAMPLE_PROMETHEUS_DIR,
    AlertmanagerProcess,
    PrometheusProcess,
    example_prometheus_config,
)
from tests.support import CollectorProcess, FakeAgent, wait_until

REGIONS: Final = ("north", "south", "east")
AGENT: Final = "edge-1"
NOW: Final = float(int(time.time()))
WITHIN: Final = 900  # the default wait target, seconds
# Both twins of a pair send floor notices (the agent delivers a notice id once); an ack
# timeout of 10 minutes keeps every chain open (never "unanswered") for the test's length.
NOTICES: Final = {
    "a": "[notices]\nack_timeout_seconds = 600.0\n",
    "b": "[notices]\nack_timeout_seconds = 600.0\n",
}

Script = list[tuple[float, type[Event], dict[str, Any]]]


@dataclass(frozen=True)
class Floor:
    """One region's branches, what is sent to them, and the figures that must come out."""

    region: str
    i: int

    @property
    def branches(self) -> tuple[str, str]:
        return f"{self.region}-1", f"{self.region}-2"

    @property
    def waits(self) -> tuple[list[float], list[float]]:
        """Seconds each called ticket waited, per branch."""
        return [300.0, 1000.0], [120.0] + [600.0] * self.i

    @property
    def ratings(self) -> tuple[list[str], list[str]]:
        return ["very_satisfied"] * (self.i + 1) + ["unsatisfied"], ["satisfied"]

    def opening(self, index: int) -> Script:
        script: Script = [
            (-3600, ev.BranchOpened, {}),
            (-3590, ev.CounterOpened, {"counter": "c1", "kind": "high", "teller": "t1"}),
            (-3580, ev.PositionStaffed, {"position": 2, "staff": "s2"}),
            (-3580, ev.PositionStaffed, {"position": 5, "staff": "t1"}),
        ]
        if index == 1:
            script.append((-3580, ev.PositionStaffed, {"position": 1, "staff": "s1"}))
        return script

    def business(self, index: int) -> Script:
        script: Script = []
        for n, waited in enumerate(self.waits[index]):
            ticket, issued = f"T{n}", -2500.0 + 10 * n
            script += [
                (issued, ev.TicketIssued, {"ticket": ticket, "service": "cash"}),
                (issued + waited, ev.TicketCalled, {"ticket": ticket, "counter": "c1"}),
            ]
        for n, rating in enumerate(self.ratings[index]):
            script += [
                (-400.0 + n, ev.EvaluationRequested, {"counter": "c1"}),
                (-399.5 + n, ev.EvaluationSubmitted, {"counter": "c1", "rating": rating}),
            ]
        if index == 0:
            script.append((-200.0, ev.EvaluationRequested, {"counter": "c1"}))  # not rated
            script += [
                (-300.0, ev.TicketIssued, {"ticket": f"W{n}", "service": "non_cash"})
                for n in range(self.i + 1)
            ]
        else:
            script.append((-1500.0, ev.TicketIssued, {"ticket": "L1", "service": "cash"}))
        return script

    # -- the figures the region rules must give --------------------------------------------

    @property
    def waiting(self) -> int:
        return self.i + 2

    @property
    def called(self) -> list[float]:
        return [w for waits in self.waits for w in waits]

    @property
    def service_level(self) -> float:
        return sum(w <= WITHIN for w in self.called) / len(self.called)

    @property
    def average_wait(self) -> float:
        return sum(self.called) / len(self.called)

    @property
    def rated(self) -> list[str]:
        return [r for ratings in self.ratings for r in ratings]

    @property
    def satisfaction(self) -> float:
        return sum(r in ("very_satisfied", "satisfied") for r in self.rated) / len(self.rated)

    @property
    def requests(self) -> int:
        return len(self.rated) + 1


FLOORS: Final = tuple(Floor(region, i) for i, region in enumerate(REGIONS))


class ClusterAgent(FakeAgent):
    """A :class:`FakeAgent` logged in to one node of the NATS cluster as its own user
    (``region/branch/agent``, MQTT 3.1.1): publishes, answers replays from memory."""

    def __init__(self, cluster: NatsCluster, node: int, region: str, branch: str) -> None:
        self.region, self.branch, self.agent = region, branch, AGENT
        self.topic = topic_for(region, branch, AGENT, "events")
        self.sent: list[Event] = []
        self.replays: list[int] = []
        self._lock = threading.Lock()
        self.seq = itertools.count(1)
        user = f"{region}/{branch}/{AGENT}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{region}-{branch}-{AGENT}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.username_pw_set(user, cluster.passwords[user].read_text().strip())
        self.client.max_inflight_messages_set(200)
        self.client.on_message = self._command
        self.client.connect("127.0.0.1", cluster.nodes[node].mqtt_port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, f"agent {user} connected")
        self.client.subscribe(topic_for(region, branch, AGENT, "cmd"), qos=1)

    def send(self, script: Script) -> None:
        self.publish(
            [
                kind(v=1, seq=next(self.seq), ts=NOW + offset, device="queue-1", **fields)
                for offset, kind, fields in script
            ],
            batch=True,
        )

    def online(self) -> None:
        status = Status(
            v=1, state="online", session=1, ts=time.time(), version="test",
            devices={"queue-1": DeviceStatus(kind="queue", link="up")}, spool=SpoolStatus(),
        )  # fmt: skip
        topic = topic_for(self.region, self.branch, AGENT, "status")
        self.publish_raw(topic, encode(status), retain=True)


@dataclass
class Pair:
    """A region's two collectors, ``a`` and ``b`` (both send floor notices), on one node."""

    floor: Floor
    node: int
    twins: dict[str, CollectorProcess] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        return [f"127.0.0.1:{c.port}" for c in self.twins.values()]


def pair_of(cluster: NatsCluster, floor: Floor, node: int, work: Path) -> Pair:
    """The pair, not started: ``--region`` and ``--client-id`` per twin, the region's own
    collector user, and the cluster's nodes listed from ``node`` on (both twins connect to
    that node first)."""
    user = f"collector-{floor.region}"
    brokers = [cluster.urls[(node + k) % len(cluster.urls)] for k in range(len(cluster.urls))]
    pair = Pair(floor, node)
    for twin, notices in NOTICES.items():
        state = work / f"{floor.region}-{twin}"
        state.mkdir()
        config = state / "collector.toml"
        config.write_text(
            f'[mqtt]\nprotocol = "3.1.1"\nusername = "{user}"\n'
            f'password_file = "{cluster.passwords[user]}"\n{notices}'
        )
        extra = ["--config", str(config), "--region", floor.region]
        for url in brokers[1:]:
            extra += ["--broker", url]
        pair.twins[twin] = CollectorProcess(brokers[0], state, f"{user}-{twin}", extra)
    return pair


def start_all(collectors: list[CollectorProcess]) -> None:
    """Start every collector at once (each start waits for its /readyz)."""
    with ThreadPoolExecutor(len(collectors)) as pool:
        for started in pool.map(lambda c: c.start(ready_timeout=45), collectors):
            assert started.proc is not None


# -- the Prometheus servers, from the shipped examples ------------------------------------


def host_port(url: str) -> str:
    return url.removeprefix("http://")


def example_shards() -> int:
    """How many shard targets region.yml scrapes each collector as (its ``shards``)."""
    (job,) = yaml.safe_load((EXAMPLE_PROMETHEUS_DIR / "region.yml").read_text())["scrape_configs"]
    (shards,) = job["params"]["shards"]
    groups = sorted(group["labels"]["__param_shard"] for group in job["static_configs"])
    assert groups == sorted(str(i) for i in range(int(shards))), groups
    return int(shards)


SHARDS: Final = example_shards()


def regional_prometheus(pair: Pair, am: AlertmanagerProcess, work: Path) -> PrometheusProcess:
    """deploy/prometheus/region.yml for ``pair``, the test's rules and Alertmanager."""
    region = pair.floor.region
    config = example_prometheus_config(
        "region.yml",
        work / f"prometheus-{region}.yml",
        {
            "collector-north-a:9108": pair.targets[0],
            "collector-north-b:9108": pair.targets[1],
            "/etc/prometheus/branchwatch/*.rules.yml": str(work / "rules" / "*.yml"),
            "alertmanager.example.internal:9093": host_port(am.url),
        },
    )
    # Each collector is SHARDS targets (one per shard): wait_for_target_up counts them all.
    targets = [target for target in pair.targets for _ in range(SHARDS)]
    return PrometheusProcess(targets, workdir=work / region, config=config)


def global_prometheus(regional: dict[str, PrometheusProcess], work: Path) -> PrometheusProcess:
    """deploy/prometheus/global.yml federating the regional servers."""
    addresses = {region: host_port(prom.url) for region, prom in regional.items()}
    config = example_prometheus_config(
        "global.yml",
        work / "prometheus-global.yml",
        {f"prometheus-{region}:9090": address for region, address in addresses.items()},
    )
    return PrometheusProcess(list(addresses.values()), workdir=work / "global", config=config)


# -- what the tests ask them ------------------------------------------------------------


def value(prom: PrometheusProcess, promql: str) -> float | None:
    """The value of a query that returns one series, None when it returns none."""
    rows = prom.query(promql)
    assert len(rows) <= 1, (promql, rows)
    return float(rows[0]["value"][1]) if rows else None


def query_at(prom: PrometheusProcess, promql: str, at: float) -> list[dict[str, Any]]:
    """An instant query evaluated at ``at`` (several queries, one instant)."""
    rows: list[dict[str, Any]] = prom.get_json(
        "/api/v1/query", {"query": promql, "time": f"{at:.3f}"}
    )["data"]["result"]
    return rows


def per_region(prom: PrometheusProcess, record: str) -> dict[str, float]:
    rows = prom.query(record)
    regions = [row["metric"]["region"] for row in rows]
    assert len(regions) == len(set(regions)), (record, rows)  # one series per region
    return {row["metric"]["region"]: float(row["value"][1]) for row in rows}


def firing(prom: PrometheusProcess) -> list[dict[str, str]]:
    return [a["labels"] for a in prom.alerts() if a["state"] == "firing"]


def expected_alerts(floor: Floor) -> list[dict[str, str]]:
    first, second = floor.branches
    return [
        {"alertname": "BranchwatchCustomerWaitTooLong", "region": floor.region,
         "branch": second, "service": "cash", "severity": "warning", "concern": "floor"},
        {"alertname": "BranchwatchGreeterPostEmpty", "region": floor.region,
         "branch": first, "position": "1", "severity": "critical", "concern": "floor"},
    ]  # fmt: skip


def sorted_alerts(alerts: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(alerts, key=lambda labels: sorted(labels.items()))


def wall_queries(datasource: str) -> dict[str, tuple[str, str]]:
    """{title: (query, legend)} of the wall's panels on ``datasource``, every region."""
    wall = build_all()["branchwatch-wall"]
    queries = {}
    for panel in wall["panels"]:
        if panel["datasource"]["uid"] == datasource:
            [target] = panel["targets"]
            expr = target["expr"].replace("$region", ".*")  # Grafana's "All"
            assert "$" not in expr, (panel["title"], expr)
            queries[panel["title"]] = (expr, target.get("legendFormat", ""))
    return queries


def past(prom: PrometheusProcess, at: float) -> bool:
    """Every region's rules were evaluated after ``at`` (and reached ``prom``)."""
    return all(stamp(prom, f'{rules.BRANCHES_OPEN}{{region="{r}"}}') > at for r in REGIONS)


def firing_since(prom: PrometheusProcess) -> dict[str, str]:
    """{alert name: when it became active} of the firing alerts."""
    return {
        a["labels"]["alertname"]: a["activeAt"] for a in prom.alerts() if a["state"] == "firing"
    }


def stamp(prom: PrometheusProcess, promql: str) -> float:
    """When the newest sample of ``promql`` was written (a rule's last evaluation)."""
    return value(prom, f"max(timestamp({promql}))") or 0.0
