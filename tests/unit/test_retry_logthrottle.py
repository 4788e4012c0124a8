"""The shared reconnect backoff and the throttled log, on an injected clock."""

from __future__ import annotations

import logging
import re

import pytest

from branchwatch.errors import ConfigError
from branchwatch.logthrottle import ThrottledLog
from branchwatch.retry import Backoff


def test_backoff_doubles_up_to_the_cap_and_starts_over_after_a_reset() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.peek() == 3.0
    backoff.reset()
    assert backoff.peek() == 0.5
    assert [backoff.next() for _ in range(2)] == [0.5, 1.0]


def test_backoff_jitter_spreads_each_delay_around_its_nominal_value() -> None:
    delays = []
    for _ in range(200):
        backoff = Backoff(first=10.0, cap=10.0, jitter=0.2)
        delays.append(backoff.next())
    assert all(8.0 <= delay <= 12.0 for delay in delays)
    assert len(set(delays)) > 100, "a fleet must not retry in step"
    assert min(delays) < 9.0 and max(delays) > 11.0


@pytest.mark.parametrize(
    ("first", "cap", "jitter", "message"),
    [
        (0.0, 1.0, 0.0, "need 0 < first"),
        (2.0, 1.0, 0.0, "need 0 < first (2.0) <= cap (1.0)"),
        (1.0, 2.0, 1.0, "jitter must be in [0, 1)"),
        (1.0, 2.0, -0.1, "jitter must be in [0, 1)"),
    ],
)
def test_backoff_refuses_unusable_settings(
    first: float, cap: float, jitter: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Backoff(first, cap, jitter)


NAME = "test.throttle"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_throttled_log_writes_once_per_interval_and_counts_what_it_held_back(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, NAME)
    throttled = ThrottledLog(logging.getLogger(NAME), interval=60.0, clock=clock)
    assert throttled.warning("broker %s refused us", "a")
    for _ in range(3):
        clock.now += 10
        assert not throttled.warning("broker %s refused us", "a")
    clock.now += 29.9  # 59.9 s after the first line: still held back
    assert not throttled.warning("broker %s refused us", "a")
    clock.now += 0.1
    assert throttled.error("broker %s refused us", "b")
    clock.now += 60
    assert throttled.warning("broker %s refused us", "c")
    assert caplog.record_tuples == [
        (NAME, logging.WARNING, "broker a refused us"),
        (NAME, logging.ERROR, "broker b refused us (+4 more since the last report)"),
        (NAME, logging.WARNING, "broker c refused us"),
    ]


def test_throttled_log_keys_are_throttled_apart_and_forget_reopens_one(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, NAME)
    throttled = ThrottledLog(logging.getLogger(NAME), interval=60.0, clock=clock)
    assert throttled.warning("rejected (%s)", "bad_json", key="bad_json")
    assert throttled.warning("rejected (%s)", "bad_value", key="bad_value")
    assert not throttled.warning("rejected (%s)", "bad_json", key="bad_json")
    throttled.forget("bad_json")  # over: the next occurrence is news
    assert throttled.warning("rejected (%s) again", "bad_json", key="bad_json")
    assert not throttled.warning("rejected (%s)", "bad_value", key="bad_value")
    assert throttled.log(logging.INFO, "other", key="other")
    assert caplog.record_tuples == [
        (NAME, logging.WARNING, "rejected (bad_json)"),
        (NAME, logging.WARNING, "rejected (bad_value)"),
        (NAME, logging.WARNING, "rejected (bad_json) again"),
        (NAME, logging.INFO, "other"),
    ]
