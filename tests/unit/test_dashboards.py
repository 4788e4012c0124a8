"""The boards as built: uids, datasources, queries, thresholds at the targets, layout, drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel
from grafana_foundation_sdk.models.prometheus import Dataquery as PrometheusQuery

from alerts import region
from alerts.config import DEFAULT
from branchwatch.cli import main
from branchwatch.contract import metrics
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.config import GrafanaConfig
from dashboards.build import BOARDS, JSON_DIR, build_all, file_name, render
from dashboards.common import wait_target_le

BOARD_UIDS = ("branchwatch-wall", "branchwatch-floor", "branchwatch-fleet")
WALL_MAX_HEIGHT = 24  # grid rows that fit a 1080p screen in kiosk mode without scrolling
# Every series of the metric catalog (floor and the collector's own).
CONTRACT_METRICS = {
    series
    for family in metrics.CATALOG
    for series in (
        (family.bucket, family.sum, family.count) if family.type == "histogram" else (family.name,)
    )
}

REGION_RECORDS = {str(rule["record"]) for rule in region.rules(DEFAULT)}

BUILT = build_all()


def panels(uid: str) -> list[dict[str, Any]]:
    return list(BUILT[uid]["panels"])


def panel(uid: str, title: str) -> dict[str, Any]:
    matches = [p for p in panels(uid) if p["title"] == title]
    assert len(matches) == 1, f"{uid}: no single panel titled {title!r}"
    return matches[0]


def threshold_steps(p: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["value"], s["color"]) for s in steps]


def test_the_three_boards_have_stable_uids() -> None:
    assert tuple(BUILT) == BOARD_UIDS
    for uid, board in BUILT.items():
        assert board["uid"] == uid and board["id"] is None
        assert board["title"].startswith("branchwatch · ")
        assert "branchwatch" in board["tags"]


@pytest.mark.parametrize("uid", BOARD_UIDS)
def test_every_panel_reads_the_datasource_variable_with_a_query(uid: str) -> None:
    variables = {v["name"]: v for v in BUILT[uid]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = ("${datasource}", "${global}") if uid == "branchwatch-wall" else ("${datasource}",)
    for p in panels(uid):
        assert p["datasource"]["type"] == "prometheus", p["title"]
        assert p["datasource"]["uid"] in sources, p["title"]
        assert p["targets"], f"{p['title']} has no query"
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), p["title"]
        for target in p["targets"]:
            assert target["expr"].strip(), p["title"]


@pytest.mark.parametrize("uid", BOARD_UIDS)
def test_queries_use_only_contract_metrics(uid: str) -> None:
    """...or the region rules' series (alerts/region.py), which the rules do record."""
    for p in panels(uid):
        for target in p["targets"]:
            recorded = set(re.findall(r"region:branchwatch_\w+:\w+", target["expr"]))
            assert recorded <= REGION_RECORDS, (p["title"], recorded - REGION_RECORDS)
            raw = re.sub(r"region:branchwatch_\w+:\w+", "", target["expr"])
            names = set(re.findall(r"branchwatch_[a-z_]+", raw))
            assert names <= CONTRACT_METRICS, (p["title"], names - CONTRACT_METRICS)


def test_the_wall_reads_tiles_from_the_global_tier_and_lists_from_the_regional() -> None:
    """Tiles and by-region bars: region rules only, from $global (what a global Prometheus
    federates); the lists naming branches, devices, alerts: per-branch series, from
    $datasource (tests/integration/test_region_tiers.py runs both against real tiers)."""
    variables = {v["name"]: v for v in BUILT["branchwatch-wall"]["templating"]["list"]}
    assert variables["global"]["type"] == "datasource"
    assert variables["region"]["datasource"]["uid"] == "${global}"
    assert "region:branchwatch_" in variables["region"]["query"]
    on_global = set()
    for p in panels("branchwatch-wall"):
        [target] = p["targets"]
        raw = re.sub(r"region:branchwatch_\w+:\w+", "", target["expr"])
        if p["datasource"]["uid"] == "${global}":
            on_global.add(p["title"])
            assert "region:branchwatch_" in target["expr"], p["title"]
            assert "branchwatch_" not in raw, p["title"]
        else:
            assert "region:" not in target["expr"], p["title"]
    assert len(on_global) == 14
    assert {"Customers waiting, by region", "Branches open, by region"} <= on_global


@pytest.mark.parametrize("uid", BOARD_UIDS)
def test_panels_sit_on_the_grid_without_overlapping(uid: str) -> None:
    taken: set[tuple[int, int]] = set()
    ids = [p["id"] for p in panels(uid)]
    assert ids == list(range(1, len(ids) + 1))
    for p in panels(uid):
        pos = p["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, p["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_the_wall_fits_one_screen_with_big_tiles() -> None:
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels("branchwatch-wall"))
    assert bottom <= WALL_MAX_HEIGHT
    assert all(p["type"] != "row" for p in panels("branchwatch-wall"))  # nothing collapsed
    stats = [p for p in panels("branchwatch-wall") if p["type"] == "stat"]
    assert len(stats) >= 6
    for p in stats:
        assert p["gridPos"]["h"] >= 5 and p["gridPos"]["w"] >= 4, p["title"]
        assert p["options"]["colorMode"] == "background", p["title"]
        assert p["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds", p["title"]


def test_wall_thresholds_sit_at_the_targets() -> None:
    wait = [(None, "green"), (900.0, "yellow"), (1200.0, "orange"), (1800.0, "red")]
    assert threshold_steps(panel("branchwatch-wall", "Longest wait now")) == wait
    assert threshold_steps(panel("branchwatch-wall", "Longest waits")) == wait
    assert threshold_steps(panel("branchwatch-wall", "Satisfaction")) == [
        (None, "red"),
        (0.9, "green"),
    ]
    assert threshold_steps(panel("branchwatch-wall", "Evaluation rate")) == [
        (None, "red"),
        (0.8, "green"),
    ]
    assert threshold_steps(panel("branchwatch-wall", "Post 1 empty: for how long"))[-1] == (
        600.0,  # when post 1 pages with floor notices on (the backstop)
        "red",
    )
    service_level = panel("branchwatch-wall", "Called within 15 min (1 h)")
    assert region.WITHIN_TARGET_1H in service_level["targets"][0]["expr"]
    [within] = [r for r in region.rules(DEFAULT) if r["record"] == region.WITHIN_TARGET_1H]
    le = wait_target_le(DEFAULT_THRESHOLDS)
    assert f'le="{le}"' in str(within["expr"])
    assert le == "900.0"  # the bucket label the collector exports for 15 min


def test_wall_shows_firing_alerts_and_empty_greeter_posts() -> None:
    alerts = panel("branchwatch-wall", "Alerts firing (all regions)")
    assert alerts["targets"][0]["expr"] == 'ALERTS{alertstate="firing"}'
    empty = panel("branchwatch-wall", "Post 1 empty: for how long")["targets"][0]["expr"]
    assert f'{metrics.POSITION_STAFFED.name}{{position="1"' in empty and "== 0" in empty
    assert metrics.BRANCH_OPEN.name in empty  # a closed branch's empty door is no incident


def test_floor_board_follows_one_branch_and_shows_incidents() -> None:
    board = BUILT["branchwatch-floor"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["branch"]["query"] == (
        f'label_values({metrics.BRANCH_OPEN.name}{{region="$region"}}, branch)'
    )
    for p in panels("branchwatch-floor"):
        for target in p["targets"]:
            assert 'region="$region",branch="$branch"' in target["expr"], p["title"]
    timeline = panel("branchwatch-floor", "Posts 1–7: staffed or empty")
    assert timeline["type"] == "state-timeline"
    built_in, incidents = board["annotations"]["list"]
    assert built_in["builtIn"] == 1 and not built_in["enable"]  # not every branch's marks
    assert incidents["enable"]
    assert incidents["target"]["tags"] == ["branchwatch", "region:$region", "branch:$branch"]


def test_fleet_board_says_where_versions_are() -> None:
    assert "/api/v1/branches" in BUILT["branchwatch-fleet"]["description"]


@pytest.mark.parametrize("uid", BOARD_UIDS)
def test_committed_json_matches_a_fresh_build(uid: str) -> None:
    committed = (JSON_DIR / file_name(uid)).read_text()
    assert committed == render(BUILT[uid]), (
        f"dashboards/json/{file_name(uid)} is stale: run `make dashboards` and commit"
    )


def test_no_stray_files_in_the_json_directory() -> None:
    assert sorted(p.name for p in JSON_DIR.glob("*.json")) == sorted(
        file_name(uid) for uid in BOARDS
    )


def test_build_command_writes_the_committed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grafana", "build", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.splitlines()
    for uid in BOARD_UIDS:
        written = tmp_path / "out" / file_name(uid)
        assert str(written) in printed
        assert written.read_text() == (JSON_DIR / file_name(uid)).read_text()


def test_build_writes_into_the_current_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not into the installed package, wherever that is."""
    monkeypatch.chdir(tmp_path)
    assert main(["grafana", "build"]) == 0
    assert sorted(p.name for p in (tmp_path / "grafana-dashboards").iterdir()) == sorted(
        file_name(uid) for uid in BOARD_UIDS
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["grafana", "build", "--help"])
    assert "./grafana-dashboards in the current directory" in capsys.readouterr().out


@pytest.mark.parametrize("out", ["/proc/branchwatch-nope", "{tmp}/a-file"])
def test_an_unusable_out_is_one_line_and_exit_2(
    out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    assert main(["grafana", "build", "--out", out.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("branchwatch: error: cannot write the boards to ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_provisioning_points_at_the_same_uids() -> None:
    root = Path(__file__).parents[2] / "deploy" / "grafana" / "provisioning"
    dashboards_yaml = (root / "dashboards" / "branchwatch.yaml").read_text()
    datasources_yaml = (root / "datasources" / "branchwatch.yaml").read_text()
    assert "folderUid: branchwatch" in dashboards_yaml
    assert "type: file" in dashboards_yaml
    assert "uid: branchwatch-prometheus" in datasources_yaml
    assert "type: prometheus" in datasources_yaml


def test_the_guide_explains_every_wall_panel_and_grafana_setting() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "grafana.md").read_text()
    for p in panels("branchwatch-wall"):
        assert f"| {p['title']} |" in guide, f"docs/grafana.md does not explain {p['title']!r}"
    for uid in BOARD_UIDS:
        assert f"`{uid}`" in guide
    for setting in msgspec.structs.fields(GrafanaConfig):
        assert f"{setting.name} = " in guide, f"docs/grafana.md lacks grafana.{setting.name}"


@pytest.mark.parametrize("uid", BOARD_UIDS)
def test_committed_json_decodes_with_the_sdk_models(uid: str) -> None:
    """The JSON Grafana loads parses back into the SDK's typed panels and Prometheus queries."""
    register_default_plugins()
    data = json.loads((JSON_DIR / file_name(uid)).read_text())
    decoded = Dashboard.from_json(data)
    assert decoded.uid == uid and decoded.panels is not None
    for built, model in zip(data["panels"], decoded.panels, strict=True):
        assert isinstance(model, Panel), built["title"]  # no rows: nothing collapsed
        assert model.options is not None, built["title"]  # typed options of its plugin
        assert type(model.options).__module__.endswith(built["type"].replace("-", "")), built
        assert model.targets and all(isinstance(t, PrometheusQuery) for t in model.targets)


# -- an HA pair: one series per thing on the floor and fleet boards --------------------------

HA_BOARDS = ("branchwatch-floor", "branchwatch-fleet")
# The series a selector can name, with the family it belongs to and whether it is a bucket.
SERIES_FAMILY = {
    series: (family, series.endswith("_bucket"))
    for family in metrics.CATALOG
    for series in (
        (family.bucket, family.sum, family.count) if family.type == "histogram" else (family.name,)
    )
}
AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)"
    r"\s*(?:(by|without)\s*\(([^()]*)\))?\s*$"
)


def _innermost_aggregation(expr: str, at: int) -> tuple[str, str, frozenset[str]] | None:
    """(operator, by/without/"", labels) of the innermost aggregation around ``expr[at]``."""
    # Blank out quoted strings: a regex matcher may hold parentheses.
    text = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: '"' + " " * (len(m[0]) - 2) + '"', expr)
    opened: list[int] = []
    around: list[int] = []  # openings of the groups that contain ``at``, outermost first
    for index, char in enumerate(text):
        if char == "(":
            opened.append(index)
        elif char == ")":
            start = opened.pop()
            if start < at < index:
                around.append(start)
    for start in sorted(around, reverse=True):
        head = AGGREGATION.search(text[:start])
        if head:
            labels = frozenset(label.strip() for label in (head[3] or "").split(",") if label)
            return head[1], head[2] or "", labels
    return None


def ha_problems(expr: str, legend: str = "") -> list[str]:
    """Why ``expr`` would show an HA pair's series twice (or merge its collectors), if it would.

    A floor series must sit directly (through functions and arithmetic, no other
    aggregation) inside ``max by`` exactly the labels that name it; a collector's own
    series inside an aggregation ``by (instance, …)``, with the instance in the legend.
    """
    problems = []
    for match in re.finditer(r"(?<![\w:])branchwatch_\w+", expr):
        family, bucket = SERIES_FAMILY[match[0]]
        found = _innermost_aggregation(expr, match.start())
        if family.scope == "branch":
            wanted = frozenset((*family.all_labels, "le") if bucket else family.all_labels)
            if found != ("max", "by", wanted):
                problems.append(f"{match[0]}: in {found}, not max by {sorted(wanted)}")
        elif found is None or found[1] != "by" or "instance" not in found[2]:
            problems.append(f"{match[0]}: in {found}, not per instance")
        elif "{{instance}}" not in legend:
            problems.append(f"{match[0]}: the legend {legend!r} does not name the instance")
    return problems


@pytest.mark.parametrize(
    "expr",
    [
        'sum(branchwatch_queue_waiting{region="n"})',  # the twins added up
        "max by (region, branch) (branchwatch_queue_waiting)",  # services merged
        "max by (region, branch, service, instance) (branchwatch_queue_waiting)",  # twins kept
        "max(sum by (region, branch, service) (branchwatch_queue_waiting))",  # max of a sum
        "max without (instance) (branchwatch_queue_waiting)",
        "histogram_quantile(0.5, sum by (le) (rate(branchwatch_wait_seconds_bucket[5m])))",
        'topk(5, time() - branchwatch_agent_last_seen_timestamp_seconds{region=~"a|(b)"})',
        "sum(rate(branchwatch_collector_messages_total[1m]))",  # the collectors summed
        "branchwatch_collector_mqtt_connected",
    ],
)
def test_the_ha_check_sees_a_series_shown_twice_or_merged(expr: str) -> None:
    assert ha_problems(expr, "{{instance}}")


def test_the_ha_check_passes_merged_series_and_per_instance_self_metrics() -> None:
    assert not ha_problems(
        "sum(max by (region, branch, service, le) (increase(branchwatch_wait_seconds_bucket"
        '{le="900.0",rating=~"a|(b)"}[1h]))) / sum(max by (region, branch, service) '
        "(increase(branchwatch_wait_seconds_count[1h])))"
    )
    assert not ha_problems(
        "sum by (instance, result) (rate(branchwatch_collector_messages_total[1m]))",
        "{{instance}} · {{result}}",
    )
    assert ha_problems(
        "sum by (instance) (rate(branchwatch_collector_messages_total[1m]))", "{{result}}"
    )


@pytest.mark.parametrize("uid", HA_BOARDS)
def test_every_query_shows_one_series_per_thing_behind_an_ha_pair(uid: str) -> None:
    """Issue #11: two collectors scrape-export the same floor; a board shows it once, and
    shows each collector's own figures apart (tests/integration/test_dashboard_queries.py
    runs the queries against a real pair)."""
    problems = [
        f"{p['title']}: {problem}"
        for p in panels(uid)
        for target in p["targets"]
        for problem in ha_problems(target["expr"], target.get("legendFormat", ""))
    ]
    assert not problems, "\n".join(problems)
