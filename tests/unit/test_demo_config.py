"""The demo's collector config: floor notices timed in simulated time."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwatch.demo.cli import collector_toml
from collector.config import load_collector_config
from collector.notices.config import NoticesConfig


@pytest.mark.parametrize("speed", [1.0, 30.0, 200.0])
def test_every_notice_timing_is_the_default_divided_by_the_speed(
    speed: float, tmp_path: Path
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(collector_toml(speed))
    config = load_collector_config(path)
    defaults = NoticesConfig()
    assert config.notices.enabled
    assert config.notices.post_empty_seconds == pytest.approx(defaults.post_empty_seconds / speed)
    assert config.notices.ack_timeout_seconds == pytest.approx(defaults.ack_timeout_seconds / speed)
    assert config.notices.repeat_seconds == pytest.approx(defaults.repeat_seconds / speed)
    unscaled = NoticesConfig(
        post_empty_seconds=config.notices.post_empty_seconds,
        ack_timeout_seconds=config.notices.ack_timeout_seconds,
        repeat_seconds=config.notices.repeat_seconds,
    )
    assert config.notices == unscaled, "nothing else differs from the defaults"
