"""One alert rule as Prometheus reads it: labels, annotations and links every alert carries."""

from __future__ import annotations

from typing import Final

from alerts.config import AlertConfig
from alerts.promql import duration
from alerts.yamltext import Yaml

Rule = dict[str, Yaml]
WHERE: Final = "{{ $labels.region }}/{{ $labels.branch }}"


def alert(
    cfg: AlertConfig,
    name: str,
    expr: str,
    for_seconds: float,
    severity: str,
    concern: str,
    summary: str,
    description: str,
    branch_link: bool = True,
    labels: dict[str, Yaml] | None = None,
) -> Rule:
    labels = {**(labels or {}), "severity": severity, "concern": concern, **cfg.extra_labels}
    annotations: dict[str, Yaml] = {"summary": summary, "description": description}
    annotations["runbook_url"] = cfg.runbook(name.lower())
    if branch_link:
        annotations["branch_url"] = (
            f"{cfg.collector_api_url}/api/v1/branches/{{{{ $labels.region }}}}"
            "/{{ $labels.branch }}"
        )
    return {
        "alert": name,
        "expr": expr,
        "for": duration(for_seconds),
        "labels": labels,
        "annotations": annotations,
    }
