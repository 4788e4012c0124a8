"""Region collectors, HA pairs and the global Prometheus tier, all real processes.

Three regions, each an HA pair of collectors (``--region``, its own ``--client-id``;
both sending floor notices) connected to its own node of a 3-node NATS cluster
(deploy/nats, tests/natscluster.py); each branch's agent talks to another node. One
regional Prometheus per region scrapes its pair, evaluates the rules (``for:`` shortened,
thresholds as shipped: the floor is backdated past them) and alerts one Alertmanager
(the example config, receivers posting to a webhook); a global Prometheus federates the
``region:`` series. Both Prometheus configs are deploy/prometheus/region.yml and
global.yml with only addresses, the rules path and intervals replaced: each collector is
scraped as region.yml's shard targets (``/metrics?shard=I&shards=N``).

The floor of each region is known (tests/integration/regiontiers.py), so every figure
is checked against what was sent: in each collector, each regional Prometheus, the
global one and the wall board's own queries (taken from dashboards/, never retyped).
The last test kills one twin with SIGKILL and checks that nothing moved.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Final

import pytest

from alerts import build
from alerts import region as rules
from alerts.config import DEFAULT
from branchwatch.contract import events as ev
from branchwatch.contract import metrics
from collector.exposition import shard_of
from tests.integration.regiontiers import (
    AGENT,
    FLOORS,
    NOW,
    REGIONS,
    SHARDS,
    WITHIN,
    ClusterAgent,
    Floor,
    Pair,
    expected_alerts,
    firing,
    firing_since,
    global_prometheus,
    pair_of,
    past,
    per_region,
    query_at,
    regional_prometheus,
    sorted_alerts,
    stamp,
    start_all,
    value,
    wall_queries,
)
from tests.natscluster import NatsCluster
from tests.promstack import (
    AlertmanagerProcess,
    PrometheusProcess,
    WebhookReceiver,
    example_alertmanager_config,
)
from tests.support import CollectorProcess, Samples, parse_metrics, wait_until

pytestmark = pytest.mark.integration

# `for:` of a second: the floor is backdated an hour, past every threshold as shipped.
SHORT: Final = DEFAULT.replace(post_for_seconds=1, wait_for_seconds=1)
TIMEOUT: Final = 40.0
RECORDS: Final = {str(rule["record"]) for rule in rules.rules(DEFAULT)}
# Counts of what the collectors hold now: exact, and the same before and after a twin dies.
GAUGES: Final = (
    rules.BRANCHES_OPEN,
    rules.QUEUE_WAITING,
    rules.GREETER_POST_EMPTY,
    rules.DEVICES_DOWN,
    rules.NOTICE_UNANSWERED,
)
SHARES: Final = (rules.SERVICE_LEVEL, rules.SATISFACTION)
# A share is a ratio of increase() sums over branches (and regions), and increase()
# extrapolates each series to the instant of evaluation by (age + up to one scrape
# interval) / age: series begun at different scrapes, or evaluated by different servers,
# carry factors some per cent apart while they are seconds old, as here. So a share is
# the known one within 5 %; the counts above are exact.
SHARE_TOLERANCE: Final = 0.05


def series_names(family: metrics.MetricFamily) -> tuple[str, ...]:
    if family.type == "histogram":
        return family.bucket, family.sum, family.count
    return (family.name,)


# Per-series figures that differ between twins by design: the receive time of an agent's
# last message, and the times each twin's own clock gives its notices (when a chain ran
# out, how long an ack took after the send).
NOT_SHARED: Final = {
    metrics.AGENT_LAST_SEEN.name,
    metrics.NOTICE_UNANSWERED.name,
    *series_names(metrics.NOTICE_ACK_SECONDS),
}
EVERY_FLOOR_SERIES: Final = {n for family in metrics.FLOOR for n in series_names(family)}
FLOOR_SERIES: Final = EVERY_FLOOR_SERIES - NOT_SHARED
PROMETHEUS_OWN: Final = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_post_metric_relabeling",
    "scrape_samples_scraped",
    "scrape_series_added",
}


@dataclass
class Tiers:
    cluster: NatsCluster
    pairs: dict[str, Pair]
    regional: dict[str, PrometheusProcess]
    bank: PrometheusProcess  # the global tier
    alertmanager: AlertmanagerProcess
    webhook: WebhookReceiver
    agents: dict[str, ClusterAgent]  # by branch
    settled_at: float = 0.0  # when the known floor had reached the global tier


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiers]:
    work = tmp_path_factory.mktemp("region-tiers")
    cluster = NatsCluster(work / "nats")
    for floor in FLOORS:
        cluster.add_collector(f"collector-{floor.region}", floor.region)
        for branch in floor.branches:
            cluster.add_agent(floor.region, branch, AGENT)
    build.write(SHORT, work / "rules")
    pairs = {f.region: pair_of(cluster, f, node, work) for node, f in enumerate(FLOORS)}
    with ExitStack() as stack:
        webhook = stack.enter_context(WebhookReceiver())
        am_config = example_alertmanager_config(webhook.url, work / "alertmanager.yml")
        am = stack.enter_context(AlertmanagerProcess(am_config, work / "am"))
        # The Prometheus servers first: they take ~5 s to scrape a new target, the time
        # the cluster and the collectors take to start.
        regional = {
            region: stack.enter_context(regional_prometheus(pair, am, work))
            for region, pair in pairs.items()
        }
        bank = stack.enter_context(global_prometheus(regional, work))
        stack.callback(cluster.close)
        cluster.start()
        collectors = [c for pair in pairs.values() for c in pair.twins.values()]
        for collector in collectors:
            stack.callback(collector.kill)
        start_all(collectors)
        for prom in (*regional.values(), bank):
            prom.wait_for_target_up(timeout=TIMEOUT)
        agents = feed(cluster, regional)
        for agent in agents.values():
            stack.callback(agent.close)
        yield Tiers(cluster, pairs, regional, bank, am, webhook, agents)


def feed(cluster: NatsCluster, regional: dict[str, PrometheusProcess]) -> dict[str, ClusterAgent]:
    """Phase 1 (opening), then phase 2 (business) once every counter was scraped at 0."""
    agents: dict[tuple[Floor, int], ClusterAgent] = {}
    for node, floor in enumerate(FLOORS):
        for index, branch in enumerate(floor.branches):
            # Never the node of the region's collectors: the cluster carries the events.
            agent = ClusterAgent(cluster, (node + 1 + index) % 3, floor.region, branch)
            agent.online()
            agent.send(floor.opening(index))
            agents[floor, index] = agent
    for region, prom in regional.items():
        wait_until(partial(counters_scraped, prom), TIMEOUT, f"{region}: counters scraped at 0")
    for (floor, index), agent in agents.items():
        agent.send(floor.business(index))
    return {agent.branch: agent for agent in agents.values()}


def counters_scraped(prom: PrometheusProcess) -> bool:
    """Both twins' rating counters of both branches are in Prometheus (at 0)."""
    branches = f"count by (instance, branch) ({metrics.EVALUATIONS.name})"
    return value(prom, f"count({branches})") == 4


def settled(tiers: Tiers) -> bool:
    """Phase 2 has reached the global tier: waiting customers and both shares, each region."""
    waiting = per_region(tiers.bank, rules.QUEUE_WAITING)
    level = per_region(tiers.bank, rules.SERVICE_LEVEL)
    liked = per_region(tiers.bank, rules.SATISFACTION)
    return all(
        waiting.get(f.region) == f.waiting
        and math.isclose(level.get(f.region, -1), f.service_level, rel_tol=SHARE_TOLERANCE)
        and math.isclose(liked.get(f.region, -1), f.satisfaction, rel_tol=SHARE_TOLERANCE)
        for f in FLOORS
    )


@pytest.fixture(scope="module")
def fed(tiers: Tiers) -> Tiers:
    try:
        wait_until(lambda: settled(tiers), TIMEOUT, "the known floor in the global tier")
    except AssertionError as exc:
        seen = {r: per_region(tiers.bank, r) for r in (*GAUGES, *SHARES, rules.CALLED_1H)}
        expected = [(f.waiting, f.service_level, f.satisfaction) for f in FLOORS]
        raise AssertionError(f"{exc}\nglobal tier: {seen}\nexpected: {expected}") from None
    tiers.settled_at = time.time()
    return tiers


def floor_samples(collector: CollectorProcess) -> Samples:
    return {k: v for k, v in collector.metrics().items() if k[0] in FLOOR_SERIES}


def test_each_collector_holds_its_region_only_and_the_pairs_sit_on_three_nodes(
    fed: Tiers,
) -> None:
    assert sorted(pair.node for pair in fed.pairs.values()) == [0, 1, 2]
    for region, pair in fed.pairs.items():
        node = fed.cluster.urls[pair.node]
        for twin, collector in pair.twins.items():
            branches = collector.api("/branches")["branches"]
            held = sorted((b["region"], b["branch"]) for b in branches)
            assert held == [(region, branch) for branch in pair.floor.branches], (twin, held)
            assert f"connected to {node} (broker 1 of 3)" in collector.log(), collector.log()


def twins_agree(a: CollectorProcess, b: CollectorProcess) -> Samples:
    """The floor series both twins export, once they are the same (empty: not yet)."""
    samples = floor_samples(a)
    return samples if samples == floor_samples(b) else {}


def notice_open_in_both(a: CollectorProcess, b: CollectorProcess) -> bool:
    same = twins_agree(a, b)
    return any(k[0] == metrics.NOTICE_OPEN.name and v == 1 for k, v in same.items())


def test_the_twins_of_a_pair_compute_the_same_floor(fed: Tiers) -> None:
    for region, pair in fed.pairs.items():
        a, b = pair.twins["a"], pair.twins["b"]
        same: Samples = wait_until(partial(twins_agree, a, b), TIMEOUT, f"{region}: twins agree")
        waiting = sum(v for k, v in same.items() if k[0] == metrics.QUEUE_WAITING.name)
        assert waiting == pair.floor.waiting
        called = sum(v for k, v in same.items() if k[0] == metrics.WAIT_SECONDS.count)
        assert called == len(pair.floor.called)
        # Both notify: once a chain is open in both, its series agree like the rest.
        wait_until(partial(notice_open_in_both, a, b), TIMEOUT, f"{region}: both twins notify")


def shard_scrape(collector: CollectorProcess, shard: int) -> Samples:
    status, body = collector.get(f"/metrics?shard={shard}&shards={SHARDS}")
    assert status == 200, body
    return parse_metrics(body.decode())


def shards_add_up(collector: CollectorProcess) -> bool:
    """The collector's shards hold its unsharded floor, every sample in exactly one shard
    (the one of its branch); False while the floor changed between the scrapes."""
    whole = {k: v for k, v in collector.metrics().items() if k[0] in EVERY_FLOOR_SERIES}
    union: Samples = {}
    for shard in range(SHARDS):
        samples = shard_scrape(collector, shard)
        own = [k for k in samples if k[0].startswith("branchwatch_collector_")]
        assert bool(own) == (shard == 0), (shard, own)  # the collector's own: shard 0 only
        floor = {k: v for k, v in samples.items() if k[0] in EVERY_FLOOR_SERIES}
        for name, labels in floor:
            where = dict(labels)
            assert shard_of(where["region"], where["branch"], SHARDS) == shard, (name, labels)
        assert not floor.keys() & union.keys()
        union.update(floor)
    return bool(whole) and union == whole


def test_each_collector_serves_every_branch_once_across_its_shards(fed: Tiers) -> None:
    for region, pair in fed.pairs.items():
        for twin, collector in pair.twins.items():
            wait_until(partial(shards_add_up, collector), TIMEOUT, f"{region} {twin}: shards")
        prom = fed.regional[region]
        # Every shard target of both twins is up, each with its own shard label.
        ups = prom.query('up{job="branchwatch-collector"}')
        shards = sorted((row["metric"]["instance"], row["metric"]["shard"]) for row in ups)
        assert shards == sorted((t, str(i)) for t in pair.targets for i in range(SHARDS))
        assert all(row["value"][1] == "1" for row in ups)
        # Each branch once per twin, the collector's own metrics once per twin (shard 0).
        held = prom.query(f"count by (instance, branch) ({metrics.BRANCH_OPEN.name})")
        assert sorted(
            (r["metric"]["instance"], r["metric"]["branch"], r["value"][1]) for r in held
        ) == sorted((t, branch, "1") for t in pair.targets for branch in pair.floor.branches)
        own = prom.query(metrics.COLLECTOR_MQTT_CONNECTED.name)
        assert sorted((r["metric"]["instance"], r["metric"]["shard"]) for r in own) == sorted(
            (t, "0") for t in pair.targets
        )


def two_firing(prom: PrometheusProcess) -> bool:
    return len(firing(prom)) >= 2


def test_each_condition_fires_once_not_once_per_twin(fed: Tiers) -> None:
    for region, prom in fed.regional.items():
        wait_until(partial(two_firing, prom), TIMEOUT, f"{region}: alerts firing")
        # Exactly these: one per condition, no instance label.
        assert sorted_alerts(firing(prom)) == expected_alerts(fed.pairs[region].floor)
    receivers = {"north": ("north-pager", "north-ops"), "south": ("south-pager", "south-ops")}
    for floor in FLOORS:
        pager, ops = receivers.get(floor.region, ("central-pager", "ops-centre"))
        for labels in expected_alerts(floor):
            got = wait_until(partial(fed.webhook.alerts, **labels), TIMEOUT, f"{labels} sent")
            assert [(n["receiver"], a["status"]) for n, a in got] == [
                (pager if labels["severity"] == "critical" else ops, "firing")
            ]
    held = [a["labels"] for a in fed.alertmanager.alerts()]
    everyone = [labels for floor in FLOORS for labels in expected_alerts(floor)]
    assert sorted_alerts(held) == sorted_alerts(everyone)


def test_the_global_tier_holds_every_regions_figures_and_nothing_per_branch(fed: Tiers) -> None:
    names = set(fed.bank.metric_names())
    assert {n for n in names if n.startswith("region:")} == RECORDS
    assert names - RECORDS <= PROMETHEUS_OWN
    assert fed.bank.query('{branch!=""}') == []
    counts = per_region(fed.bank, 'count by (region) ({__name__=~"region:.*"})')
    assert counts == dict.fromkeys(REGIONS, len(RECORDS))
    for floor in FLOORS:
        r = floor.region
        assert per_region(fed.bank, rules.BRANCHES_OPEN)[r] == 2
        assert per_region(fed.bank, rules.GREETER_POST_EMPTY)[r] == 1
        assert per_region(fed.bank, rules.QUEUE_WAITING)[r] == floor.waiting
        shares = (
            per_region(fed.bank, rules.SERVICE_LEVEL)[r],
            per_region(fed.bank, rules.SATISFACTION)[r],
            per_region(fed.bank, rules.WAITED_1H)[r] / per_region(fed.bank, rules.CALLED_1H)[r],
        )
        known = (floor.service_level, floor.satisfaction, floor.average_wait)
        assert shares == pytest.approx(known, rel=SHARE_TOLERANCE)
    # The bank's sums are the sums of the regional servers' own figures.
    for record in GAUGES:
        regional = sum(sum(per_region(p, record).values()) for p in fed.regional.values())
        assert value(fed.bank, f"sum({record})") == regional, record


def test_the_wall_reads_one_value_per_region_and_the_banks_from_the_global_tier(
    fed: Tiers,
) -> None:
    queries = wall_queries("${global}")
    assert len(queries) == 14
    # One instant for every query, after the floor settled, once every region's rules
    # have been evaluated and federated past it (federation keeps their timestamps).
    at = fed.settled_at + 1
    wait_until(lambda: past(fed.bank, at + 1), TIMEOUT, "the global tier past the instant")
    by_region, bank = {}, {}
    for title, (expr, legend) in queries.items():
        rows = query_at(fed.bank, expr, at)
        values = [float(row["value"][1]) for row in rows]
        assert all(math.isfinite(v) for v in values), (title, rows)
        if legend == "{{region}}":
            assert sorted(row["metric"]["region"] for row in rows) == sorted(REGIONS), title
            regions = [row["metric"]["region"] for row in rows]
            by_region[title] = dict(zip(regions, values, strict=True))
        else:
            assert len(values) == 1, (title, rows)
            bank[title] = values[0]
    assert by_region["Customers waiting, by region"] == {f.region: f.waiting for f in FLOORS}
    assert by_region["Branches open, by region"] == dict.fromkeys(REGIONS, 2)
    levels = by_region["Called within 15 min (1 h), by region"]
    known = {f.region: f.service_level for f in FLOORS}
    assert levels == pytest.approx(known, rel=SHARE_TOLERANCE)
    liked = by_region["Satisfaction, by region"]
    known = {f.region: f.satisfaction for f in FLOORS}
    assert liked == pytest.approx(known, rel=SHARE_TOLERANCE)
    called = [w for f in FLOORS for w in f.called]
    rated = [r for f in FLOORS for r in f.rated]
    assert bank["Branches with post 1 empty"] == len(FLOORS)
    # The bank's shares: ratios of the regions' sums (SHARE_TOLERANCE says why not exact).
    expected = {
        "Called within 15 min (1 h)": sum(w <= WITHIN for w in called) / len(called),
        "Average wait (1 h)": sum(called) / len(called),
        "Average wait today": sum(called) / len(called),
        "Satisfaction": sum(r != "unsatisfied" for r in rated) / len(rated),
        "Evaluation rate": len(rated) / sum(f.requests for f in FLOORS),
    }
    assert {t: bank[t] for t in expected} == pytest.approx(expected, rel=SHARE_TOLERANCE)
    # ...and exactly the ratio of the regions' sums, not a mean of the regions' shares.
    parts = {
        "Called within 15 min (1 h)": (rules.WITHIN_TARGET_1H, rules.CALLED_1H),
        "Average wait (1 h)": (rules.WAITED_1H, rules.CALLED_1H),
        "Average wait today": (rules.WAITED_TODAY, rules.CALLED_TODAY),
        "Satisfaction": (rules.SATISFIED_12H, rules.RATINGS_12H),
        "Evaluation rate": (rules.RATINGS_12H, rules.REQUESTS_12H),
    }
    for title, (numerator, denominator) in parts.items():
        num, den = (
            sum(float(row["value"][1]) for row in query_at(fed.bank, record, at))
            for record in (numerator, denominator)
        )
        assert bank[title] == pytest.approx(num / den, rel=1e-12), title
    # The oldest ticket waiting (north-2's, issued 1500 s before NOW) at the last evaluation.
    assert bank["Longest wait now"] == pytest.approx(at - (NOW - 1500), abs=2)
    assert bank["Devices down or faulty"] == 0
    assert bank["Branches with an unanswered notice chain"] == 0


def test_the_walls_lists_show_one_row_per_thing_from_a_regional_tier(fed: Tiers) -> None:
    queries = wall_queries("${datasource}")
    assert {"Post 1 empty: for how long", "Alerts firing (all regions)"} <= queries.keys()
    for region, prom in fed.regional.items():
        first = fed.pairs[region].floor.branches[0]
        for title, (expr, _) in queries.items():
            rows = prom.query(expr)
            labels = [tuple(sorted(row["metric"].items())) for row in rows]
            assert len(labels) == len(set(labels)), (region, title, rows)
            assert not any("instance" in row["metric"] for row in rows), (region, title)
        empty = prom.query(queries["Post 1 empty: for how long"][0])
        assert [(r["metric"]["region"], r["metric"]["branch"]) for r in empty] == [(region, first)]


def test_killing_a_twin_loses_no_alert_and_no_value(fed: Tiers) -> None:
    """SIGKILL twin a of north (both twins send floor notices): its alerts stay firing
    (not resolved, not restarted), and the global tier keeps every figure and follows the
    floor through the surviving twin."""
    prom, pair = fed.regional["north"], fed.pairs["north"]
    since = firing_since(prom)
    assert len(since) == 2
    before = {record: per_region(fed.bank, record) for record in RECORDS}
    dead = pair.twins["a"]
    dead.kill()
    instance = f"127.0.0.1:{dead.port}"
    every_shard_down = f'max(up{{instance="{instance}"}}) == 0'
    wait_until(lambda: value(prom, every_shard_down) == 0, TIMEOUT, "north a down")
    down = time.time()
    # Three evaluations of the rules after the target went down, seen in both tiers.
    greeter = 'ALERTS{alertname="BranchwatchGreeterPostEmpty", region="north"}'
    wait_until(lambda: stamp(prom, greeter) > down + 3, TIMEOUT, "alert rules evaluated")
    wait_until(
        lambda: stamp(fed.bank, f'{rules.BRANCHES_OPEN}{{region="north"}}') > down + 3,
        TIMEOUT,
        "region rules evaluated and federated",
    )
    assert sorted_alerts(firing(prom)) == expected_alerts(pair.floor)
    # The same alerts, active since the same instant: never resolved in between.
    assert firing_since(prom) == since
    sent = [(a["labels"]["alertname"], a["status"]) for _, a in fed.webhook.alerts()]
    assert all(status == "firing" for _, status in sent), sent
    after = {record: per_region(fed.bank, record) for record in RECORDS}
    for record in GAUGES:
        assert after[record] == before[record], record
    for record in SHARES:
        assert after[record] == pytest.approx(before[record], rel=SHARE_TOLERANCE), record
    assert after.keys() == before.keys()
    assert all(after[record].keys() == before[record].keys() for record in RECORDS)
    # The panel lives on: a new customer at north-1 reaches the global tier through twin b.
    agent = fed.agents[pair.floor.branches[0]]
    agent.send([(time.time() - NOW, ev.TicketIssued, {"ticket": "X1", "service": "vip"})])
    wait_until(
        lambda: per_region(fed.bank, rules.QUEUE_WAITING)["north"] == pair.floor.waiting + 1,
        TIMEOUT,
        "the new customer in the global tier",
    )
