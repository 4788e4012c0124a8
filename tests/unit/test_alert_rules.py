"""The generated rule files: fresh, valid (promtool), unit-tested alert by alert, documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest
import yaml

from alerts import build
from alerts.config import DEFAULT, AlertConfig
from alerts.groups import CONCERNS, FILES
from alerts.promql import duration, metric
from alerts.yamltext import dump
from branchwatch.contract import metrics
from branchwatch.contract.metrics import bucket_label
from branchwatch.errors import ConfigError
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.floor.config import FloorConfig, FloorRules
from tests.support import require_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts" / "rules"
PROMTOOL_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.test.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"


def promtool() -> str:
    return require_binary("promtool", "/usr/bin/promtool")


def alert_rules(cfg: AlertConfig = DEFAULT) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group in FILES.values():
        rules.extend(r for r in cast(list[dict[str, Any]], group(cfg)["rules"]) if "alert" in r)
    return rules


def test_committed_rule_files_match_a_fresh_build() -> None:
    assert build.drift() == [], "alerts/rules/ is stale: run `make alerts` and commit"
    assert sorted(p.name for p in RULES.glob("*.rules.yml")) == sorted(FILES)


def test_drift_names_a_changed_missing_or_extra_file(tmp_path: Path) -> None:
    build.write(out=tmp_path)
    assert build.drift(out=tmp_path) == []
    (tmp_path / "floor.rules.yml").write_text("groups: []\n")
    (tmp_path / "fleet.rules.yml").unlink()
    (tmp_path / "old.rules.yml").write_text("groups: []\n")
    assert build.drift(out=tmp_path) == ["fleet.rules.yml", "floor.rules.yml", "old.rules.yml"]
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    build.write(out=tmp_path)
    assert not (tmp_path / "old.rules.yml").exists()
    assert build.main(["--check", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("name", sorted(FILES))
def test_promtool_check_rules(name: str) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES / name)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("path", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path) -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", path.name],
        check=False,
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_promtool_test_that_expects_it_to_fire() -> None:
    texts = "\n".join(p.read_text() for p in PROMTOOL_TESTS)
    for rule in alert_rules():
        name = rule["alert"]
        # a firing case: the alertname followed by a non-empty exp_alerts list
        firing = re.search(rf"alertname: {name}\n\s+exp_alerts:\n\s+- exp_labels", texts)
        quiet = re.search(rf"alertname: {name}\n\s+exp_alerts: \[\]", texts)
        assert firing, f"{name}: no promtool case where it fires"
        assert quiet, f"{name}: no promtool case where it stays quiet"
    assert {p.name.replace(".test.yml", ".rules.yml") for p in PROMTOOL_TESTS} == set(FILES)


def test_every_alert_has_for_severity_annotations_and_a_documented_runbook_anchor() -> None:
    runbook = RUNBOOK.read_text()
    anchors = set(re.findall(r'^## .*<a id="([a-z0-9-]+)"></a>', runbook, re.M))
    anchors |= {h.lower() for h in re.findall(r"^## (Branchwatch\w+)\s*$", runbook, re.M)}
    for rule in alert_rules():
        name = str(rule["alert"])
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and isinstance(notes, dict)
        assert rule["for"] not in ("", "0s"), name
        assert labels["severity"] in ("warning", "critical"), name
        assert labels["concern"] in CONCERNS, name
        assert {"summary", "description", "runbook_url"} <= notes.keys(), name
        assert notes["runbook_url"] == f"{DEFAULT.runbook_url_base}#{name.lower()}"
        assert name.lower() in anchors, f"docs/runbook.md has no section for {name}"
        if labels["concern"] in ("floor", "service", "fleet"):
            assert "{{ $labels.region }}/{{ $labels.branch }}" in notes["summary"], name
            assert "{{ $labels.region }}" in notes["branch_url"], name


def test_floor_and_service_alerts_fire_only_while_the_branch_is_open() -> None:
    for rule in alert_rules():
        labels = rule["labels"]
        assert isinstance(labels, dict)
        if labels["concern"] in ("floor", "service"):
            assert f"and on(region, branch) {metrics.BRANCH_OPEN.name} == 1\n" in rule["expr"]


def test_thresholds_flow_from_the_config_into_the_rules() -> None:
    short = DEFAULT.replace(
        thresholds=DEFAULT_THRESHOLDS.replace(
            greeter_empty_seconds=3,
            wait_target_seconds=4,
            wait_warning_seconds=4,
            wait_critical_seconds=8,
        ),
        post_for_seconds=1,
        wait_for_seconds=1,
        collector_selector='job="bw-test"',
        floor_selector='region="north"',
        runbook_url_base="http://runbooks/r.md",
        extra_labels={"team": "branch-ops"},
    )
    files = build.render(short)
    floor = files["floor.rules.yml"]
    assert ") > 3\n" in floor and 'for: "1s"' in floor
    assert f"time() - {metrics.QUEUE_OLDEST_ISSUED.name}{{" in floor
    assert '{region="north"} > 4\n' in floor and '{region="north"} > 8\n' in floor
    assert f'{metrics.POSITION_STAFFED.name}{{region="north", position="1"}} == 0' in floor
    assert 'team: "branch-ops"' in floor
    assert '"http://runbooks/r.md#branchwatchgreeterpostempty"' in floor
    assert 'up{job="bw-test"} == 0' in files["collector.rules.yml"]
    assert files != build.render()


def unchecked(**changes: float) -> AlertConfig:
    """DEFAULT with thresholds that skipped their own validation (as a caller might)."""
    return DEFAULT.replace(thresholds=msgspec.structs.replace(DEFAULT_THRESHOLDS, **changes))


def test_the_config_refuses_thresholds_that_cannot_work() -> None:
    with pytest.raises(ConfigError, match="wait_warning_seconds < wait_critical_seconds"):
        build.render(unchecked(wait_critical_seconds=600))
    with pytest.raises(ConfigError, match="satisfaction_target is a share"):
        build.render(unchecked(satisfaction_target=90))
    with pytest.raises(ConfigError, match="greeter_empty_seconds must be whole seconds"):
        build.render(unchecked(greeter_empty_seconds=90.5))
    with pytest.raises(ConfigError, match="greeter_post and lobby_post must differ"):
        build.render(DEFAULT.replace(lobby_post=1))


def test_defaults_match_the_collector_and_its_bucket_labels() -> None:
    assert DEFAULT.thresholds is DEFAULT_THRESHOLDS
    exported = {bucket_label(bound) for bound in FloorRules(FloorConfig()).wait_buckets}
    selected = set(re.findall(r'le="([^"]+)"', "".join(build.render().values())))
    assert selected == {"900.0"} <= exported  # the rules select a bucket the collector has


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (30, "30s"), (120, "2m"), (90, "1m30s"), (3600, "1h"), (43200, "12h"),
     (86400, "1d"), (90061, "1d1h1m1s")],
)  # fmt: skip
def test_duration(seconds: int, text: str) -> None:
    assert duration(seconds) == text


def test_duration_refuses_fractions() -> None:
    with pytest.raises(ValueError, match="whole"):
        duration(1.5)


def test_metric_selector() -> None:
    assert metric(DEFAULT, metrics.BRANCH_OPEN.name) == "branchwatch_branch_open"
    cfg = DEFAULT.replace(floor_selector='region="n"')
    assert metric(cfg, "m", 'position="1"') == 'm{region="n", position="1"}'
    assert metric(cfg, "up", floor=False) == 'up{job="branchwatch-collector"}'


def test_yaml_writer_round_trips_through_a_yaml_parser() -> None:
    document: dict[str, Any] = {
        "groups": [
            {
                "name": "g",
                "interval": "1m",
                "rules": [
                    {"alert": "A", "expr": "a\n  and b\n", "for": "1m", "labels": {}},
                    {"record": "r", "expr": 'x{y="z"} > 0.5', "tags": ["p", 1, True]},
                ],
            }
        ],
        "quote": 'say "{{ $value }}": ok # not a comment',
    }
    parsed = yaml.safe_load(dump(document, "header line"))
    document["groups"][0]["rules"][0]["expr"] = "a\n  and b"
    assert parsed == document


def test_command_line_settings_override_the_defaults(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "--set", "greeter_empty_seconds=180",
            "--set", "satisfaction_target=0.85",
            "--set", "device_faults_ignored=paper_low,link_down",
            "--set", "runbook_url_base=https://wiki.bank.example/rb.md"]  # fmt: skip
    assert build.main(argv) == 0
    floor = (tmp_path / "floor.rules.yml").read_text()
    assert ") > 180\n" in floor and "https://wiki.bank.example/rb.md#" in floor
    assert "< 0.85\n" in (tmp_path / "service.rules.yml").read_text()
    assert 'fault!~"paper_low|link_down"' in (tmp_path / "fleet.rules.yml").read_text()
    assert build.main([*argv, "--check"]) == 0
    assert build.main(["--out", str(tmp_path), "--check"]) == 1  # defaults differ


def test_a_collector_config_sets_the_thresholds_of_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text("[thresholds]\nlobby_empty_seconds = 420\nservice_level_target = 0.75\n")
    out = tmp_path / "rules"
    assert build.main(["--config", str(config), "--out", str(out)]) == 0
    assert ") > 420\n" in (out / "floor.rules.yml").read_text()
    assert "< 0.75\n" in (out / "service.rules.yml").read_text()
    assert build.main(["--config", str(config), "--out", str(out), "--check"]) == 0
    assert build.main(["--out", str(out), "--check"]) == 1  # the defaults differ


def test_a_bad_collector_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(
        "[floor]\nwait_warning_seconds = 900\n[thresholds]\nwait_warning_seconds = 1000\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        build.main(["--config", str(config), "--out", str(tmp_path / "rules")])
    assert exit_info.value.code == 2
    assert "set in both [floor] and [thresholds]" in capsys.readouterr().err
    assert not (tmp_path / "rules").exists()


@pytest.mark.parametrize(
    "setting", ["nope=1", "greeter_empty_seconds", "extra_labels=a", "wait_warning_seconds=x",
                "wait_critical_seconds=10"],
)  # fmt: skip
def test_bad_command_line_settings_exit_2(setting: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build.main(["--out", str(tmp_path), "--set", setting])
    assert exit_info.value.code == 2
    assert not list(tmp_path.iterdir())
