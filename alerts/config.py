"""How the alert rules are built: ``for:`` durations, minimum counts, selectors and links.

The thresholds themselves (how long a post may stay empty, the wait limits, the
service targets, how long a device may be offline) are not here: they are the
deployment's :class:`~branchwatch.thresholds.Thresholds`, the ``[thresholds]``
table of the collector's config, which the collector and the boards read too.

The rules in ``alerts/rules/`` are generated from :data:`DEFAULT` (default
thresholds) by ``make alerts`` (``python -m alerts.build``). A deployment builds
its own with ``python -m alerts.build --config collector.toml``; never edit the
YAML by hand: a unit test fails when the committed files differ from a fresh build.

Durations are whole seconds here and rendered as Prometheus durations (``120`` → ``2m``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final

from branchwatch.errors import ConfigError
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds

# Thresholds the rules also write as a Prometheus duration (``for:`` or the text).
WHOLE_SECONDS: Final = (
    "greeter_empty_seconds",
    "lobby_empty_seconds",
    "wait_warning_seconds",
    "wait_critical_seconds",
    "device_offline_seconds",
    "average_wait_target_seconds",
)


@dataclass(frozen=True, kw_only=True)
class AlertConfig:
    """Thresholds, durations, selectors and links for every branchwatch rule."""

    # The deployment's targets and thresholds (the collector's [thresholds] table).
    thresholds: Thresholds = DEFAULT_THRESHOLDS

    # -- selectors ---------------------------------------------------------------------
    # Extra label matchers added to every floor metric (e.g. 'region=~"north|east"' for a
    # regional Prometheus that scrapes more than branchwatch). Empty: none.
    floor_selector: str = ""
    # How Prometheus' scrape job for the collector is selected (CollectorDown, self-metrics).
    collector_selector: str = 'job="branchwatch-collector"'

    # -- links -------------------------------------------------------------------------
    # Where docs/runbook.md is published; every alert links to runbook_url_base#anchor.
    runbook_url_base: str = "https://branchwatch.example.internal/docs/runbook.md"
    # The collector's HTTP API as responders reach it: each floor alert links to
    # {collector_api_url}/api/v1/branches/{region}/{branch} (who was at the post, tickets).
    collector_api_url: str = "http://branchwatch-collector:9108"

    # -- floor: lobby posts (thresholds: greeter_empty_seconds, lobby_empty_seconds) ----------
    greeter_post: int = 1
    greeter_post_name: str = "greeting and ticket desk"
    lobby_post: int = 2
    lobby_post_name: str = "self-service machines"
    # The condition must hold this long more before the alert fires: it absorbs a missed
    # scrape; the thresholds already measure how long the post has been empty.
    post_for_seconds: int = 30

    # -- floor notices: the branch was told first (the collector's [notices]) ----------------
    # A notice chain exhausted this long more before on-call is paged: a late ack or the
    # post staffed again right after the last step ends it; the chain itself already took
    # post_empty_seconds and one ack_timeout_seconds per step.
    notice_unanswered_for_seconds: int = 30

    # -- floor: waiting customers (thresholds: wait_warning/critical_seconds) ----------------
    wait_for_seconds: int = 30

    # -- service quality (thresholds: wait_target_seconds and the three targets) -------------
    service_level_window: int = 3600
    service_level_min_tickets: int = 10  # fewer called tickets in the window: no verdict
    service_level_for_seconds: int = 600
    # "Over the day": a 12 h window covers one business day of a branch closed overnight
    # (satisfaction and evaluation rate).
    day_window: int = 43200
    satisfaction_min_ratings: int = 20
    satisfaction_for_seconds: int = 600
    evaluation_rate_min_requests: int = 10
    evaluation_for_seconds: int = 600

    # -- the business day (threshold: average_wait_target_seconds, the bank's figure) ---------
    # Day figures are increase() over day_window, reported while that window still reaches
    # back to the day's opening (branchwatch_branch_opened_timestamp_seconds); the hour's
    # over service_level_window.
    average_wait_min_tickets: int = 10  # fewer called tickets today: no verdict
    average_wait_for_seconds: int = 900

    # -- fleet and devices (thresholds: device_offline_seconds, the agent's and devices' for:)
    # An agent that says nothing for this long counts as offline too (status every 60 s).
    agent_silent_seconds: int = 180
    device_fault_for_seconds: int = 120
    # Faults that are not worth a page (the agent reports them, the board shows them).
    device_faults_ignored: tuple[str, ...] = ("paper_low",)
    spool_backlog_events: int = 500
    spool_backlog_for_seconds: int = 600
    # An agent's spool refused events (its disk full) in every window for this long.
    spool_refusing_window: int = 300
    spool_refusing_for_seconds: int = 300

    # -- collector -----------------------------------------------------------------------------
    collector_down_for_seconds: int = 120
    collector_disconnected_for_seconds: int = 120
    rejected_per_second: float = 0.1  # rejected messages per second, per reason
    rejected_window: int = 600
    rejected_for_seconds: int = 600
    # Snapshots failed within this window and none succeeded for as long (at least 10 x
    # the collector's state.snapshot_interval_seconds, 15 s by default: 40 failed writes).
    snapshot_failing_seconds: int = 600
    snapshot_failing_for_seconds: int = 60

    # -- recording rules -----------------------------------------------------------------------
    # Evaluation interval of the region aggregates; None: Prometheus' global interval.
    recording_interval_seconds: int | None = None

    # -- labels added to every alert (e.g. {"team": "branch-ops"}) --------------------------
    extra_labels: dict[str, str] = field(default_factory=dict)

    def replace(self, **changes: object) -> AlertConfig:
        """A copy with ``changes`` (a test's short thresholds, a deployment's own)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def runbook(self, anchor: str) -> str:
        return f"{self.runbook_url_base}#{anchor}"

    def validate(self) -> None:
        """Refuse (:class:`ConfigError`) a config whose rules would never or always fire."""
        self.thresholds.validate()
        problems = [
            f"thresholds.{name} must be whole seconds (the rules write it as a duration)"
            for name in WHOLE_SECONDS
            if not float(getattr(self.thresholds, name)).is_integer()
        ]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_seconds", "_window")) and value is not None and value < 0:
                problems.append(f"{f.name} must not be negative")
        if self.greeter_post == self.lobby_post:
            problems.append("greeter_post and lobby_post must differ")
        if problems:
            raise ConfigError("invalid alert config: " + "; ".join(problems))


DEFAULT: Final = AlertConfig()
