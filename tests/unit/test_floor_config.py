"""Floor configuration: defaults, effective wait buckets, validation messages."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from branchwatch.errors import ConfigError
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.floor.config import FloorConfig, FloorRules, PostConfig
from collector.store import Store


def test_defaults_follow_the_design() -> None:
    config = FloorConfig()
    config.validate()
    assert config.services == ("cash", "non_cash", "vip", "corporate")
    assert [(p.position, p.name) for p in config.posts][:2] == [
        (1, "greeting and ticket desk"),
        (2, "self-service machines"),
    ]
    assert [p.position for p in config.posts] == list(range(1, 8))
    assert (config.required_posts, config.backfill_order) == ((1, 2), (3, 4, 7))


def test_effective_wait_buckets_include_every_wait_threshold() -> None:
    limits = DEFAULT_THRESHOLDS.replace(
        wait_target_seconds=450, wait_warning_seconds=600, wait_critical_seconds=1000
    )
    config = FloorConfig(wait_buckets=(60, 600))
    assert config.effective_wait_buckets(limits) == (60.0, 450.0, 600.0, 1000.0)
    assert FloorRules(config, limits).wait_buckets == (60.0, 450.0, 600.0, 1000.0)
    assert FloorConfig().effective_wait_buckets() == (
        60, 120, 300, 600, 900, 1200, 1800, 2700, 3600,
    )  # fmt: skip


def test_wait_thresholds_count_towards_the_series_budget() -> None:
    # Its buckets already hold the default thresholds; a budget the defaults just fit.
    defaults = FloorConfig().worst_case_series()
    config = FloorConfig(max_series=defaults)
    config.validate()
    three_more = DEFAULT_THRESHOLDS.replace(
        wait_target_seconds=901, wait_warning_seconds=1201, wait_critical_seconds=1801
    )
    assert config.worst_case_series(three_more) == defaults + 4 * 3
    with pytest.raises(ConfigError, match=rf"could render {defaults + 12} series"):
        config.validate(three_more)
    with pytest.raises(ConfigError, match=rf"could render {defaults + 12} series"):
        FloorRules(config, three_more)


def test_unknown_keys_fail() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"services": ["cash"], "sevrices": []}, FloorConfig)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"posts": [{"position": 1, "name": "door", "mode": "x"}]}, FloorConfig)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"services": ()}, "at least one service"),
        ({"services": ("cash", "Cash")}, "'Cash' is not a service name"),
        ({"services": ("x" * 25,)}, "is not a service name"),
        ({"services": ("cash", "cash")}, "lists a service twice"),
        ({"posts": ()}, "at least one post"),
        ({"posts": (PostConfig(0, "a"),)}, "position 0 is not in 1..99"),
        ({"posts": (PostConfig(100, "a"),)}, "position 100 is not in 1..99"),
        (
            {"posts": (PostConfig(1, "a"), PostConfig(2, "b"), PostConfig(1, "c"))},
            "position 1 is configured twice",
        ),
        ({"posts": (PostConfig(1, " "), PostConfig(2, "b"))}, "post 1 needs a name"),
        ({"required_posts": (1, 9)}, r"required_posts refers to posts \[9\]"),
        ({"required_posts": (1, 1)}, "required_posts lists a post twice"),
        ({"backfill_order": (3, 8)}, r"backfill_order refers to posts \[8\]"),
        ({"wait_buckets": ()}, "wait_buckets must list at least one bucket"),
        (
            {"wait_buckets": (60.0, 30.0)},
            "wait_buckets must be positive, finite and strictly increasing",
        ),
        ({"wait_buckets": (60.0, 60.0)}, "strictly increasing"),
        ({"service_buckets": (-1.0, 30.0)}, "service_buckets must be positive"),
        ({"max_counters": 0}, "max_counters must be at least 1"),
        ({"max_agents": 0}, "max_agents must be at least 1"),
        ({"max_devices": -1}, "max_devices must be at least 1"),
        ({"max_tellers": 0}, "max_tellers must be at least 1"),
        ({"max_transfer_pairs": 0}, "max_transfer_pairs must be at least 1"),
        ({"max_intercom_pairs": 0}, "max_intercom_pairs must be at least 1"),
        ({"max_tellers": 7, "max_series": 100}, r"\+ 5 x max_tellers, \+ max_transfer_pairs"),
        ({"max_counters": 40}, "could render 467 series"),
        ({"services": tuple(f"s{i}" for i in range(9))}, "but floor.max_series is 375"),
    ],
)
def test_invalid_configs_are_named(changes: dict[str, Any], message: str) -> None:
    config = msgspec.structs.replace(FloorConfig(), **changes)
    if "posts" in changes:
        config = msgspec.structs.replace(config, required_posts=(), backfill_order=())
    with pytest.raises(ConfigError, match=message):
        config.validate()
    with pytest.raises(ConfigError):
        Store(config)
