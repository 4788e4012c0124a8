"""The rule groups, one per concern, built from an :class:`~alerts.config.AlertConfig`.

Every alert has ``for:``, a ``severity`` and a ``concern`` label (floor, service, fleet,
collector: Alertmanager routes and inhibits on them), a summary and a description that
name the region, branch and post/service/agent with the value, and a ``runbook_url``
into docs/runbook.md. Branch alerts also link the collector's view of the branch
(``branch_url``: who was at the post, the waiting tickets).
"""

from __future__ import annotations

from typing import Final

from alerts import day
from alerts.collector_rules import collector
from alerts.config import AlertConfig
from alerts.promql import (
    BRANCH,
    branch_open,
    duration,
    metric,
    number,
    per,
    ratio_beyond,
    share,
)
from alerts.region import region
from alerts.rule import WHERE, Rule, alert
from branchwatch.contract import metrics
from branchwatch.contract.metrics import bucket_label
from collector.notices.state import NoticeKind

CONCERNS: Final = ("floor", "service", "fleet", "collector")
# The only notice chain that pages: a required post left empty. An unsatisfied customer
# not followed up has left by the time on-call could act (counted, on the boards); a long
# queue pages by itself (BranchwatchCustomerWaitTooLong). See docs/runbook.md.
PAGED_NOTICE_KIND: Final[NoticeKind] = "post_empty"


def _post_empty(
    cfg: AlertConfig, name: str, post: int, post_name: str, seconds: float, severity: str
) -> Rule:
    pos = f'position="{post}"'
    changed = metric(cfg, metrics.POSITION_CHANGED.name, pos)
    staffed = metric(cfg, metrics.POSITION_STAFFED.name, pos)
    expr = per(
        f"{BRANCH}, position",
        f"(\n  time() - {changed}\n"
        f"  and on({BRANCH}, position) {staffed} == 0\n) > {number(seconds)}\n"
        f"{branch_open(cfg)}\n",
    )
    return alert(
        cfg,
        name,
        expr,
        cfg.post_for_seconds,
        severity,
        "floor",
        f"{WHERE}: post {post} ({post_name}) empty for {{{{ $value | humanizeDuration }}}}",
        f"Nobody is checked in at post {post} ({post_name}) of branch {WHERE} while it is "
        f"open, for {{{{ $value | humanizeDuration }}}} (threshold {duration(seconds)}). "
        "Have the branch backfill it from the next staffed post; the branch view shows who "
        "left it and when, and its notices who was told and who acknowledged.",
    )


def _notices_unanswered(cfg: AlertConfig) -> list[Rule]:
    """A post_empty notice chain exhausted: critical while post 1 is the empty one.

    The unanswered gauge has no position label (one series per kind: the oldest
    exhausted chain), so post 1 is told apart by joining its staffed gauge: post 1
    empty makes the page critical (and carries ``position``, which Alertmanager
    matches against the backstop BranchwatchGreeterPostEmpty to hold it back);
    any other required post (post 2 by default) is a warning. ``and``/``unless``
    join every copy an HA pair exports, and ``max by`` makes them one alert.
    """
    name = "BranchwatchFloorNoticeUnanswered"
    kind = f'kind="{PAGED_NOTICE_KIND}"'
    since = f"time() - {metric(cfg, metrics.NOTICE_UNANSWERED.name, kind)}"
    greeter = f'position="{cfg.greeter_post}"'
    greeter_empty = f"on({BRANCH}) {metric(cfg, metrics.POSITION_STAFFED.name, greeter)} == 0"
    by = f"{BRANCH}, kind"
    told = (
        "the floor notices (the backfill posts in turn, then the escalation posts or an "
        "all-call) went unacknowledged"
    )
    critical = alert(
        cfg,
        name,
        per(by, f"{since}\nand {greeter_empty}\n{branch_open(cfg)}\n"),
        cfg.notice_unanswered_for_seconds,
        "critical",
        "floor",
        f"{WHERE}: post {cfg.greeter_post} ({cfg.greeter_post_name}) still empty, the "
        "branch's notices unanswered for {{ $value | humanizeDuration }}",
        f"Post {cfg.greeter_post} ({cfg.greeter_post_name}) of branch {WHERE} is empty while "
        f"it is open, and {told}: the chain ended {{{{ $value | humanizeDuration }}}} ago. "
        "Call the branch; the branch view's notices show who was told when.",
        labels={"position": str(cfg.greeter_post)},
    )
    warning = alert(
        cfg,
        name,
        per(by, f"{since}\nunless {greeter_empty}\n{branch_open(cfg)}\n"),
        cfg.notice_unanswered_for_seconds,
        "warning",
        "floor",
        f"{WHERE}: post {cfg.lobby_post} ({cfg.lobby_post_name}) or another required post "
        "still empty, the branch's notices unanswered for {{ $value | humanizeDuration }}",
        f"A required post other than post {cfg.greeter_post} of branch {WHERE} is empty while "
        f"it is open (post {cfg.lobby_post}, {cfg.lobby_post_name}, unless more posts are "
        f"required), and {told}: the chain ended {{{{ $value | humanizeDuration }}}} ago. "
        "Ask the branch to staff it; the branch view's notices name the post and who was told.",
    )
    return [critical, warning]


def floor(cfg: AlertConfig) -> Rule:
    limits = cfg.thresholds
    oldest = metric(cfg, metrics.QUEUE_OLDEST_ISSUED.name)
    waits = [
        alert(
            cfg,
            "BranchwatchCustomerWaitTooLong",
            per(
                f"{BRANCH}, service",
                f"time() - {oldest} > {number(limit)}\n{branch_open(cfg)}\n",
            ),
            cfg.wait_for_seconds,
            severity,
            "floor",
            f"{WHERE}: a {{{{ $labels.service }}}} customer has waited "
            "{{ $value | humanizeDuration }}",
            f"The oldest waiting {{{{ $labels.service }}}} ticket at branch {WHERE} was issued "
            f"{{{{ $value | humanizeDuration }}}} ago and has not been called "
            f"({severity} above {duration(limit)}). Open a counter for the service or call "
            "the ticket; check for a counter paused too long.",
        )
        for limit, severity in (
            (limits.wait_warning_seconds, "warning"),
            (limits.wait_critical_seconds, "critical"),
        )
    ]
    return {
        "name": "branchwatch-floor",
        "rules": [
            _post_empty(
                cfg,
                "BranchwatchGreeterPostEmpty",
                cfg.greeter_post,
                cfg.greeter_post_name,
                limits.greeter_empty_seconds,
                "critical",
            ),
            _post_empty(
                cfg,
                "BranchwatchLobbyPostEmpty",
                cfg.lobby_post,
                cfg.lobby_post_name,
                limits.lobby_empty_seconds,
                "warning",
            ),
            *_notices_unanswered(cfg),
            *waits,
        ],
    }


def _ratio_below(num: str, den: str, by: str, target: float, minimum: int, cfg: AlertConfig) -> str:
    return ratio_beyond(num, den, by, f"< {share(target)}", minimum, cfg)


def service(cfg: AlertConfig) -> Rule:
    targets = cfg.thresholds
    hour = duration(cfg.service_level_window)
    day = duration(cfg.day_window)
    le = f'le="{bucket_label(targets.wait_target_seconds)}"'
    within = f"increase({metric(cfg, metrics.WAIT_SECONDS.bucket, le)}[{hour}])"
    called = f"increase({metric(cfg, metrics.WAIT_SECONDS.count)}[{hour}])"
    good = 'rating=~"very_satisfied|satisfied"'
    satisfied = f"increase({metric(cfg, metrics.EVALUATIONS.name, good)}[{day}])"
    ratings = f"increase({metric(cfg, metrics.EVALUATIONS.name)}[{day}])"
    requested = f"increase({metric(cfg, metrics.EVALUATIONS_REQUESTED.name)}[{day}])"
    target = duration(int(targets.wait_target_seconds))
    return {
        "name": "branchwatch-service",
        "rules": [
            alert(
                cfg,
                "BranchwatchServiceLevelLow",
                _ratio_below(
                    within,
                    called,
                    f"{BRANCH}, service",
                    targets.service_level_target,
                    cfg.service_level_min_tickets,
                    cfg,
                ),
                cfg.service_level_for_seconds,
                "warning",
                "service",
                f"{WHERE}: only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.service }}}}"
                f" tickets called within {target} over the last {hour}",
                f"Service level of {{{{ $labels.service }}}} at branch {WHERE} over the last "
                f"{hour}: {{{{ $value | humanizePercentage }}}} of called tickets waited at most "
                f"{target} (target {targets.service_level_target:.0%}, at least "
                f"{cfg.service_level_min_tickets} tickets). Open more counters for the service.",
            ),
            alert(
                cfg,
                "BranchwatchSatisfactionLow",
                _ratio_below(
                    satisfied,
                    ratings,
                    BRANCH,
                    targets.satisfaction_target,
                    cfg.satisfaction_min_ratings,
                    cfg,
                ),
                cfg.satisfaction_for_seconds,
                "warning",
                "service",
                f"{WHERE}: satisfaction {{{{ $value | humanizePercentage }}}} over the last {day}",
                f"Share of satisfied and very satisfied ratings at branch {WHERE} over the last "
                f"{day}: {{{{ $value | humanizePercentage }}}} (target "
                f"{targets.satisfaction_target:.0%}, at least "
                f"{cfg.satisfaction_min_ratings} ratings). Check the unsatisfied ratings per "
                "counter and teller in the branch view.",
            ),
            alert(
                cfg,
                "BranchwatchEvaluationRateLow",
                _ratio_below(
                    ratings,
                    requested,
                    f"{BRANCH}, counter",
                    targets.evaluation_rate_target,
                    cfg.evaluation_rate_min_requests,
                    cfg,
                ),
                cfg.evaluation_for_seconds,
                "warning",
                "service",
                f"{WHERE}: counter {{{{ $labels.counter }}}} rated only "
                f"{{{{ $value | humanizePercentage }}}} of its transactions",
                f"Counter {{{{ $labels.counter }}}} at branch {WHERE}: ratings per evaluation "
                f"request over the last {day} {{{{ $value | humanizePercentage }}}} (target "
                f"{targets.evaluation_rate_target:.0%}, at least "
                f"{cfg.evaluation_rate_min_requests} requests). Check the evaluator pad and "
                "that the teller asks for a rating.",
            ),
        ],
    }


def fleet(cfg: AlertConfig) -> Rule:
    offline_for = cfg.thresholds.device_offline_seconds
    agent = f"{BRANCH}, agent"
    last_seen = metric(cfg, metrics.AGENT_LAST_SEEN.name)
    agent_up = metric(cfg, metrics.AGENT_UP.name)
    ignored = "|".join(cfg.device_faults_ignored)
    fault = metric(cfg, metrics.DEVICE_FAULT.name, f'fault!~"{ignored}"' if ignored else "")
    offline = per(
        agent,
        f"(\n  (\n    time() - {last_seen}\n    and on({agent}) {agent_up} == 0\n  )\n"
        f"  or\n  time() - {last_seen} > {cfg.agent_silent_seconds}\n)\n{branch_open(cfg)}\n",
    )
    device_down = per(
        f"{agent}, device, kind",
        f"{metric(cfg, metrics.DEVICE_UP.name)} == 0\n"
        f"and on({agent}) {agent_up} == 1\n{branch_open(cfg)}\n",
    )
    return {
        "name": "branchwatch-fleet",
        "rules": [
            alert(
                cfg,
                "BranchwatchAgentOffline",
                offline,
                offline_for,
                "critical",
                "fleet",
                f"{WHERE}: agent {{{{ $labels.agent }}}} offline, last heard "
                "{{ $value | humanizeDuration }} ago",
                f"The edge agent {{{{ $labels.agent }}}} of branch {WHERE} is offline (its MQTT "
                f"will, or nothing for over {duration(cfg.agent_silent_seconds)}) while the "
                "branch is open: the floor of this branch is not watched, and its floor alerts "
                "are held back. Last heard {{ $value | humanizeDuration }} ago.",
            ),
            alert(
                cfg,
                "BranchwatchDeviceDown",
                device_down,
                offline_for,
                "warning",
                "fleet",
                f"{WHERE}: {{{{ $labels.kind }}}} device {{{{ $labels.device }}}} down",
                f"Agent {{{{ $labels.agent }}}} of branch {WHERE} reports the link to its "
                "{{ $labels.kind }} device {{ $labels.device }} down while the branch is open "
                f"(for over {duration(offline_for)}). Check the cable/port.",
            ),
            alert(
                cfg,
                "BranchwatchDeviceFault",
                per(f"{agent}, device, fault", f"{fault} == 1\n{branch_open(cfg)}\n"),
                cfg.device_fault_for_seconds,
                "warning",
                "fleet",
                f"{WHERE}: device {{{{ $labels.device }}}} reports {{{{ $labels.fault }}}}",
                f"Device {{{{ $labels.device }}}} (agent {{{{ $labels.agent }}}}) at branch "
                f"{WHERE} reports the fault {{{{ $labels.fault }}}} while the branch is open. "
                "Ask the branch to fix it (paper, jam) or send a technician.",
            ),
            alert(
                cfg,
                "BranchwatchAgentSpoolBacklog",
                per(
                    agent,
                    f"{metric(cfg, metrics.AGENT_SPOOL_DEPTH.name)} > {cfg.spool_backlog_events}",
                ),
                cfg.spool_backlog_for_seconds,
                "warning",
                "fleet",
                f"{WHERE}: agent {{{{ $labels.agent }}}} holds {{{{ $value }}}} unsent events",
                f"The spool of agent {{{{ $labels.agent }}}} at branch {WHERE} holds "
                f"{{{{ $value }}}} events not yet acknowledged by the broker (over "
                f"{cfg.spool_backlog_events} for {duration(cfg.spool_backlog_for_seconds)}): "
                "the branch's live view is late. Check the branch's link to the broker.",
            ),
            _spool_refusing(cfg),
        ],
    }


def _spool_refusing(cfg: AlertConfig) -> Rule:
    """An agent's spool refuses events (its disk full): they are lost, not late."""
    window = duration(cfg.spool_refusing_window)
    refused = metric(cfg, metrics.AGENT_EVENTS_REFUSED.name)
    return alert(
        cfg,
        "BranchwatchAgentRefusingEvents",
        per(f"{BRANCH}, agent", f"increase({refused}[{window}]) > 0"),
        cfg.spool_refusing_for_seconds,
        "warning",
        "fleet",
        f"{WHERE}: agent {{{{ $labels.agent }}}} cannot store events ({{{{ $value | humanize }}}}"
        f" refused in {window})",
        f"The spool of agent {{{{ $labels.agent }}}} at branch {WHERE} refused "
        f"{{{{ $value | humanize }}}} events in the last {window}, and has kept refusing for "
        f"{duration(cfg.spool_refusing_for_seconds)}: its disk is full or failing, and what "
        "the devices report meanwhile is lost. Free space on the branch PC; the agent "
        "stores events again by itself.",
    )


# One rule file per concern (the file name is the key), in the order they are documented.
FILES: Final = {
    "floor.rules.yml": floor,
    "service.rules.yml": service,
    "fleet.rules.yml": fleet,
    "collector.rules.yml": collector,
    "region.rules.yml": region,
    "day.rules.yml": day.rules,
}
