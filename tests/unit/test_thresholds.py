"""One thresholds config: a threshold changed in the collector's TOML changes every place.

The collector (its wait buckets), the alert rules and the boards all read the
``[thresholds]`` table of the same file; older configs with ``floor.wait_*`` still load.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

from alerts import build as alert_build
from alerts.config import DEFAULT
from branchwatch.cli import main
from branchwatch.contract import events as ev
from branchwatch.contract import metrics
from branchwatch.errors import ConfigError
from branchwatch.thresholds import (
    DEFAULT_THRESHOLDS,
    GREETER_EMPTY_SECONDS_WITHOUT_NOTICES,
    Thresholds,
    load_thresholds,
)
from collector.app import Collector
from collector.config import CollectorConfig, HttpConfig, load_collector_config
from collector.errors import SnapshotError
from collector.floor.config import FloorConfig
from collector.store import Store

CHANGED: dict[str, Any] = {"satisfaction_target": 0.85, "wait_warning_seconds": 1500.0}
CHANGED_TOML = "[thresholds]\nsatisfaction_target = 0.85\nwait_warning_seconds = 1500\n"
CHANGED_LE = 'le="1500.0"'


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(CHANGED_TOML)
    return path


def wait_les(exposition: str) -> set[str]:
    """The ``le="…"`` matchers of the wait histogram's bucket lines."""
    return {
        'le="' + line.split('le="')[1].split('"')[0] + '"'
        for line in exposition.splitlines()
        if line.startswith(metrics.WAIT_SECONDS.bucket)
    }


def test_a_threshold_set_in_the_toml_flows_through_load_thresholds(config_file: Path) -> None:
    assert load_thresholds(config_file) == DEFAULT_THRESHOLDS.replace(**CHANGED)
    assert load_collector_config(config_file).thresholds == load_thresholds(config_file)


def test_the_collector_buckets_waits_at_the_changed_threshold(config_file: Path) -> None:
    config = msgspec.structs.replace(
        load_collector_config(config_file), http=HttpConfig(listen="127.0.0.1:0")
    )
    collector = Collector(config)
    try:
        opened = ev.BranchOpened(v=1, seq=1, ts=1.0, device="q1")
        collector.store.apply_events("r", "b", "a", [opened], received=1.0)
        text = collector.store.render()
    finally:
        collector.http.server_close()
    assert {CHANGED_LE, 'le="1200.0"'} <= wait_les(text)  # 1200 stays: a plain bucket
    default = Store(FloorConfig())
    default.apply_events("r", "b", "a", [opened], received=1.0)
    assert CHANGED_LE not in wait_les(default.render())


def test_the_alert_rules_follow_the_changed_thresholds(config_file: Path) -> None:
    changed = alert_build.render(DEFAULT.replace(thresholds=load_thresholds(config_file)))
    default = alert_build.render()
    assert "_seconds > 1500\n" in changed["floor.rules.yml"]
    assert "_seconds > 1500\n" not in default["floor.rules.yml"]
    assert "_seconds > 1200\n" in default["floor.rules.yml"]
    assert "< 0.85\n" in changed["service.rules.yml"]
    assert "< 0.85\n" not in default["service.rules.yml"]
    assert "(target 85%" in changed["service.rules.yml"]
    # Everything else is the same: only the two thresholds moved.
    assert changed["fleet.rules.yml"] == default["fleet.rules.yml"]


def test_the_boards_follow_the_changed_thresholds(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    assert main(["grafana", "build", "--config", str(config_file), "--out", str(out)]) == 0
    wall = json.loads((out / "branchwatch-wall.json").read_text())
    floor = json.loads((out / "branchwatch-floor.json").read_text())
    panels = {p["title"]: p for p in wall["panels"]}

    def steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
        return [
            (s["value"], s["color"])
            for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        ]

    assert steps(panels["Satisfaction"]) == [(None, "red"), (0.85, "green")]
    assert (1500.0, "orange") in steps(panels["Longest wait now"])
    assert "wait 15/25/30 min, satisfaction 85 %" in wall["description"]
    distribution = next(p for p in floor["panels"] if p["title"].startswith("Called within …"))
    bars = {t["legendFormat"]: t["expr"] for t in distribution["targets"]}
    assert CHANGED_LE in bars["≤ 25 min"]
    assert "≤ 20 min" in bars  # the plain 1200 s bucket is still there


def test_floor_wait_keys_of_an_older_config_are_still_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.toml"
    path.write_text('[floor]\nservices = ["cash"]\nwait_warning_seconds = 1500.0\n')
    with caplog.at_level(logging.WARNING):
        config = load_collector_config(path)
    config.validate()
    assert config.thresholds == DEFAULT_THRESHOLDS.replace(wait_warning_seconds=1500.0)
    assert config.floor == FloorConfig(services=("cash",))
    assert load_thresholds(path) == config.thresholds
    assert "wait_warning_seconds in [floor] are read as [thresholds]" in caplog.text


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[floor]\nwait_target_seconds = 600\n[thresholds]\nwait_target_seconds = 700\n",
            r"wait_target_seconds is set in both \[floor\] and \[thresholds\]",
        ),
        ("[thresholds]\nsatisfaction_target = 1.5\n", "satisfaction_target is a share"),
        ("[thresholds]\nwait_target_seconds = -1\n", "must be a positive number"),
        ("[thresholds]\nsatisfaction = 0.9\n", "unknown field `satisfaction`"),
    ],
)
def test_unusable_thresholds_stop_the_collector_with_one_line(
    toml: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_collector_config(path).validate()
    assert main(["collector", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("branchwatch: error: ")


def test_a_snapshot_taken_with_other_wait_thresholds_is_refused() -> None:
    changed = Store(FloorConfig(), thresholds=DEFAULT_THRESHOLDS.replace(**CHANGED))
    opened = ev.BranchOpened(v=1, seq=1, ts=1.0, device="q1")
    changed.apply_events("r", "b", "a", [opened], received=1.0)
    with pytest.raises(SnapshotError, match="another floor layout"):
        Store.restore(FloorConfig(), changed.snapshot())
    restored = Store.restore(
        FloorConfig(), changed.snapshot(), thresholds=DEFAULT_THRESHOLDS.replace(**CHANGED)
    )
    assert restored.branch_count == 1


def test_the_sample_config_documents_every_threshold() -> None:
    sample = (Path(__file__).parents[2] / "deploy" / "collector.toml").read_text()
    section = sample.split("\n[thresholds]\n", 1)[1].split("\n[", 1)[0]
    for name in Thresholds.__struct_fields__:
        assert f"\n{name} = " in section, f"deploy/collector.toml: [thresholds] lacks {name}"
    assert CollectorConfig().thresholds is DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("toml", "greeter"),
    [
        ("", 600.0),  # notices on by default: post 1 pages as a backstop
        ("[notices]\nenabled = true\n", 600.0),
        ("[notices]\nenabled = false\n", GREETER_EMPTY_SECONDS_WITHOUT_NOTICES),
        ("[notices]\nenabled = false\n[thresholds]\ngreeter_empty_seconds = 300\n", 300.0),
        ("[notices]\nenabled = true\n[thresholds]\ngreeter_empty_seconds = 200\n", 200.0),
    ],
)
def test_the_post_1_page_waits_longer_while_notices_tell_the_branch_first(
    toml: str, greeter: float, tmp_path: Path
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(toml)
    assert load_thresholds(path).greeter_empty_seconds == greeter
    config = load_collector_config(path)
    config.validate()
    assert config.thresholds == load_thresholds(path)  # the collector reads the same
    rules = alert_build.render(DEFAULT.replace(thresholds=config.thresholds))
    assert f") > {greeter:g}\n" in rules["floor.rules.yml"]
    if not toml:
        assert config.notices.enabled  # the collector's default is what the rules assume
        assert config.thresholds == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[notices]\nenabled = "no"\n', "notices.enabled must be true or false"),
        ('notices = "off"\n', r"\[notices\] must be a table"),
    ],
)
def test_a_notices_switch_that_is_not_a_boolean_is_refused(
    toml: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_thresholds(path)
