"""Every threshold, ``for:`` duration, selector and link of the alert rules, in one place.

The rules in ``alerts/rules/`` are generated from :data:`DEFAULT` by ``make alerts``
(``python -m alerts.build``). To change a threshold for your deployment, change it here
(or build with your own :class:`AlertConfig`) and regenerate; never edit the YAML by hand:
a unit test fails when the committed files differ from a fresh build.

Durations are whole seconds here and rendered as Prometheus durations (``120`` → ``2m``).
Targets follow DESIGN §2 (the bank's service standard); ``wait_target_seconds`` must be
one of the collector's ``floor.wait_buckets`` so the service level is exact.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, kw_only=True)
class AlertConfig:
    """Thresholds, durations, selectors and links for every branchwatch rule."""

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

    # -- floor: lobby posts (DESIGN §2) ------------------------------------------------------
    greeter_post: int = 1
    greeter_post_name: str = "greeting and ticket desk"
    greeter_empty_seconds: int = 120  # post 1 empty longer than this pages (critical)
    lobby_post: int = 2
    lobby_post_name: str = "self-service machines"
    lobby_empty_seconds: int = 300  # post 2 empty longer than this warns
    # The condition must hold this long more before the alert fires: it absorbs a missed
    # scrape; the thresholds above already measure how long the post has been empty.
    post_for_seconds: int = 30

    # -- floor: waiting customers -----------------------------------------------------------
    wait_warning_seconds: int = 1200  # oldest waiting ticket of a service
    wait_critical_seconds: int = 1800
    wait_for_seconds: int = 30

    # -- service quality ---------------------------------------------------------------------
    wait_target_seconds: float = 900.0  # "called within target" = wait_seconds le this
    service_level_target: float = 0.8  # share of tickets called within the target
    service_level_window: int = 3600
    service_level_min_tickets: int = 10  # fewer called tickets in the window: no verdict
    service_level_for_seconds: int = 600
    # "Over the day": a 12 h window covers one business day of a branch closed overnight
    # (satisfaction and evaluation rate).
    day_window: int = 43200
    satisfaction_target: float = 0.9  # (very_satisfied + satisfied) / ratings
    satisfaction_min_ratings: int = 20
    satisfaction_for_seconds: int = 600
    evaluation_rate_target: float = 0.8  # ratings / requests, per counter
    evaluation_rate_min_requests: int = 10
    evaluation_for_seconds: int = 600

    # -- fleet and devices -------------------------------------------------------------------
    agent_offline_for_seconds: int = 300  # agent offline (will) while the branch is open
    # An agent that says nothing for this long counts as offline too (status every 60 s).
    agent_silent_seconds: int = 180
    device_down_for_seconds: int = 300
    device_fault_for_seconds: int = 120
    # Faults that are not worth a page (the agent reports them, the board shows them).
    device_faults_ignored: tuple[str, ...] = ("paper_low",)
    spool_backlog_events: int = 500
    spool_backlog_for_seconds: int = 600

    # -- collector -----------------------------------------------------------------------------
    collector_down_for_seconds: int = 120
    collector_disconnected_for_seconds: int = 120
    rejected_per_second: float = 0.1  # rejected messages per second, per reason
    rejected_window: int = 600
    rejected_for_seconds: int = 600

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
        """Refuse a config that would build rules that never or always fire."""
        problems = []
        if self.wait_critical_seconds <= self.wait_warning_seconds:
            problems.append("wait_critical_seconds must exceed wait_warning_seconds")
        for name in ("service_level_target", "satisfaction_target", "evaluation_rate_target"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name} must be a share in (0, 1]")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("_seconds", "_window")) and value is not None and value < 0:
                problems.append(f"{f.name} must not be negative")
        if self.greeter_post == self.lobby_post:
            problems.append("greeter_post and lobby_post must differ")
        if problems:
            raise ValueError("invalid alert config: " + "; ".join(problems))


DEFAULT: Final = AlertConfig()
