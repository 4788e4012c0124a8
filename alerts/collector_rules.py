"""The collector's own rule group: is it scraped, connected, taking events, saving state?"""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.promql import duration, metric, share
from alerts.rule import Rule, alert
from branchwatch.contract import metrics


def collector(cfg: AlertConfig) -> Rule:
    up = metric(cfg, "up", floor=False)
    connected = metric(cfg, metrics.COLLECTOR_MQTT_CONNECTED.name, floor=False)
    rejected = metric(cfg, metrics.COLLECTOR_REJECTED.name, floor=False)
    window = duration(cfg.rejected_window)
    where = "{{ $labels.instance }}"
    return {
        "name": "branchwatch-collector",
        "rules": [
            alert(
                cfg,
                "BranchwatchCollectorDown",
                f"{up} == 0\nor\nabsent({up})\n",
                cfg.collector_down_for_seconds,
                "critical",
                "collector",
                "branchwatch collector {{ if $labels.instance }}{{ $labels.instance }}"
                "{{ else }}(no target in job {{ $labels.job }}){{ end }} is down",
                f"Prometheus cannot scrape the branchwatch collector {where} (job "
                "{{ $labels.job }}), or no collector target exists: no branch is watched and "
                "no floor alert can fire.",
                branch_link=False,
            ),
            alert(
                cfg,
                "BranchwatchCollectorMqttDisconnected",
                f"{connected} == 0\n",
                cfg.collector_disconnected_for_seconds,
                "critical",
                "collector",
                f"branchwatch collector {where} is not connected to the MQTT broker",
                f"The collector {where} has been disconnected from the broker for over "
                f"{duration(cfg.collector_disconnected_for_seconds)}: the floor metrics are "
                "frozen at their last values. Check the broker and the collector's log.",
                branch_link=False,
            ),
            alert(
                cfg,
                "BranchwatchCollectorRejectingEvents",
                f"sum by (job, instance, reason) (rate({rejected}[{window}])) "
                f"> {share(cfg.rejected_per_second)}\n",
                cfg.rejected_for_seconds,
                "warning",
                "collector",
                f"branchwatch collector {where} rejects {{{{ $value | humanize }}}} "
                "messages/s ({{ $labels.reason }})",
                f"The collector {where} rejected {{{{ $value | humanize }}}} messages or events "
                f"per second over the last {window} for the reason {{{{ $labels.reason }}}}: an "
                "agent or integrator breaks the wire contract. The collector log names the "
                "topic of the first one each minute.",
                branch_link=False,
            ),
            _snapshot_failing(cfg),
        ],
    }


def _snapshot_failing(cfg: AlertConfig) -> Rule:
    """Snapshots fail and none succeeded for the window: a restart now would lose the
    state since the last good one (replays fill it only within the agents' retention).

    Both conditions, because either alone misleads: a collector with nothing new to save
    writes no snapshot (an old last success is fine), and one failure followed by
    successes is over.
    """
    window = cfg.snapshot_failing_seconds
    failures = metric(cfg, metrics.COLLECTOR_SNAPSHOT_FAILURES.name, floor=False)
    last = metric(cfg, metrics.COLLECTOR_SNAPSHOT_LAST_SUCCESS.name, floor=False)
    where = "{{ $labels.instance }}"
    return alert(
        cfg,
        "BranchwatchCollectorSnapshotFailing",
        # The age first: an alert's value is its left side's (what the text shows).
        f"time() - {last} > {window}\nand\nincrease({failures}[{duration(window)}]) > 0\n",
        cfg.snapshot_failing_for_seconds,
        "warning",
        "collector",
        f"branchwatch collector {where} cannot write its snapshot",
        f"The collector {where} failed to write its state snapshot in the last "
        f"{duration(window)} and has written none for {{{{ $value | humanizeDuration }}}}: a "
        "restart would fall back on an old snapshot (or none). Its log says why (state dir "
        "full, gone or failing).",
        branch_link=False,
    )
