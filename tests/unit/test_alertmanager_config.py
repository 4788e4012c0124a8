"""deploy/alertmanager: amtool accepts it, it routes by concern, region and severity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import require_binary

CONFIG_DIR = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager"
CONFIG = CONFIG_DIR / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("amtool", "/usr/bin/amtool")
    return subprocess.run(
        [binary, *args], check=False, capture_output=True, text=True, cwd=CONFIG_DIR
    )


def test_amtool_check_config_passes() -> None:
    result = amtool("check-config", str(CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "4 inhibit rules" in output and "1 templates" in output


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["region=north", "branch=b1", "severity=critical", "concern=floor"], "north-pager"),
        (["region=north", "branch=b1", "severity=warning", "concern=floor"], "north-ops"),
        (["region=south", "branch=b7", "severity=critical", "concern=fleet"], "south-pager"),
        (["region=south", "branch=b7", "severity=warning", "concern=service"], "south-ops"),
        (["region=east", "branch=b2", "severity=critical", "concern=floor"], "central-pager"),
        (["region=east", "branch=b2", "severity=warning", "concern=floor"], "ops-centre"),
        (["job=branchwatch-collector", "severity=critical", "concern=collector"], "platform-pager"),
        (["region=north", "severity=warning", "concern=collector"], "platform-pager"),
    ],
)
def test_routes_by_concern_region_and_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_message_templates_render() -> None:
    result = amtool(
        "template", "render", "--template.glob=templates/*.tmpl",
        '--template.text={{ template "branchwatch.title" . }}|{{ template "branchwatch.text" . }}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    title, text = result.stdout.split("|", 1)
    assert title.startswith("[") and "in the group" in title
    assert text.count("runbook:") >= 2
