"""The agent's event clock: a step back is ignored, a step forward followed, a restart
resumes from the last stamp, stamps ahead of the clock slowly meet it again; one warning
per step back."""

from __future__ import annotations

import itertools
import logging

import pytest

from agent.eventclock import SLEW, STEP_LOG_INTERVAL, EventClock

T0 = 1_796_054_400.0


class Clocks:
    """A wall clock someone can set, and the real time that passes (the monotonic one)."""

    def __init__(self) -> None:
        self.wall = T0
        self.real = 1000.0

    def pass_time(self, seconds: float) -> None:
        self.wall += seconds
        self.real += seconds

    def event_clock(self, since: float | None = None) -> EventClock:
        return EventClock(lambda: self.wall, since=since, monotonic=lambda: self.real)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_follows_the_wall_clock_while_it_runs_forward() -> None:
    clocks = Clocks()
    clock = clocks.event_clock()
    assert clock() == T0
    clocks.pass_time(2.5)
    assert clock() == T0 + 2.5
    assert clock.latest == T0 + 2.5


def test_a_step_back_is_ignored_and_time_runs_on_from_the_last_stamp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clocks = Clocks()
    clock = clocks.event_clock()
    clocks.pass_time(10)
    assert clock() == T0 + 10
    clocks.wall -= 3600  # someone sets the PC's clock back an hour
    clocks.pass_time(5)
    with caplog.at_level(logging.INFO):
        stamps = [clock()]
        for _ in range(100):
            clocks.pass_time(1)
            stamps.append(clock())
    # On from the last stamp in real time, a little slower so as to meet the clock one day.
    assert stamps == pytest.approx([T0 + 15 + k * (1 - SLEW) for k in range(101)])
    assert all(a < b for a, b in itertools.pairwise(stamps))
    (warning,) = warnings(caplog)  # once for the step, not once per event
    assert "3600.0 s behind" in warning and "in about 20.0 h" in warning


def test_a_step_forward_is_followed_at_once(caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    clock = clocks.event_clock()
    clock()
    clocks.wall += 3600
    assert clock() == T0 + 3600
    clocks.wall -= 3600  # ... and back: the stamps stay where they were and run on
    clocks.pass_time(1)
    assert clock() == T0 + 3601
    # The clock is put right again (forward): followed, and said in the log.
    clocks.wall += 3600
    clocks.pass_time(1)
    with caplog.at_level(logging.INFO):
        assert clock() == T0 + 3602
    assert "caught up" in caplog.text


def test_a_restart_resumes_from_the_last_stamp() -> None:
    clocks = Clocks()
    clocks.wall -= 3600  # set back while the agent was down
    clock = clocks.event_clock(since=T0)  # the newest stamp its spool kept
    assert clock() == T0
    clocks.pass_time(2)
    assert clock() == pytest.approx(T0 + 2 * (1 - SLEW))
    # With the clock right, the stamp kept by the spool changes nothing.
    right = Clocks().event_clock(since=T0 - 60)
    assert right() == T0


def test_rounding_noise_is_no_step(caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    clock = clocks.event_clock()
    clock()
    clocks.wall -= 0.002  # the wall clock a hair behind: stamps do not go back, no warning
    with caplog.at_level(logging.INFO):
        assert clock() == T0
    assert not caplog.records


def test_repeated_steps_back_are_throttled(caplog: pytest.LogCaptureFixture) -> None:
    clocks = Clocks()
    clock = clocks.event_clock()
    clock()
    with caplog.at_level(logging.WARNING):
        for _ in range(5):  # a clock stepping back a minute at a time
            clocks.wall -= 60
            clocks.pass_time(1)
            clock()
        assert len(warnings(caplog)) == 1
        clocks.pass_time(STEP_LOG_INTERVAL)
        clocks.wall -= 60
        clock()
    later = warnings(caplog)[1]
    assert "s behind" in later and "+4 more" in later


def test_stamps_ahead_of_a_corrected_clock_meet_it_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A clock an hour fast, then put right: the stamps do not stay an hour ahead for good."""
    clocks = Clocks()
    clocks.wall += 3600  # ran an hour ahead
    clock = clocks.event_clock()
    stamps = [clock()]
    clocks.wall -= 3600  # a time server puts it right
    caplog.set_level(logging.INFO)
    for _ in range(int(3600 / SLEW / 600) + 2):  # ten-minute steps, a little past the meeting
        clocks.pass_time(600)
        stamps.append(clock())
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert stamps[-1] == clocks.wall  # following the clock again
    assert "caught up" in caplog.text
