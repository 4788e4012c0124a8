"""PromQL building blocks: selectors, durations, bucket labels, the "branch open" join."""

from __future__ import annotations

from alerts.config import AlertConfig
from branchwatch.contract import metrics

BRANCH = ", ".join(metrics.BRANCH_LABELS)  # every floor series carries both


def duration(seconds: float) -> str:
    """A Prometheus duration: ``120`` → ``2m``, ``43200`` → ``12h``, ``90`` → ``1m30s``."""
    total = int(seconds)
    if total != seconds or total < 0:
        raise ValueError(f"durations are whole non-negative seconds, not {seconds!r}")
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def metric(cfg: AlertConfig, name: str, *matchers: str, floor: bool = True) -> str:
    """``name{floor_selector, matchers...}``; collector metrics use the collector selector."""
    parts = [cfg.floor_selector if floor else cfg.collector_selector, *matchers]
    inside = ", ".join(p for p in parts if p)
    return f"{name}{{{inside}}}" if inside else name


def branch_open(cfg: AlertConfig) -> str:
    """The join that makes a floor rule fire only while the branch is open."""
    return f"and on({BRANCH}) {metric(cfg, metrics.BRANCH_OPEN.name)} == 1"


def number(value: float) -> str:
    """A threshold in an expression: ``120`` for a whole number of seconds, else ``0.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def share(value: float) -> str:
    """A ratio as PromQL writes it (``0.8``), never ``8e-01``."""
    return repr(float(value))


def per(labels: str, expr: str) -> str:
    """``max by (labels) (expr)``: one alert per post/queue/agent whatever scrapes it.

    An HA pair of collectors (see docs/architecture.md) exports every series twice, with different
    ``instance`` labels; keeping only the labels that name the thing makes both copies one
    alert (and Alertmanager groups and deduplicates it), and keeps ``job``/``instance``
    noise out of the notification.
    """
    body = "\n".join(f"  {line}" if line else line for line in expr.rstrip("\n").split("\n"))
    return f"max by ({labels}) (\n{body}\n)\n"


def ratio_beyond(num: str, den: str, by: str, test: str, minimum: int, cfg: AlertConfig) -> str:
    """``sum(num) / sum(den)`` by ``by`` passing ``test`` (``< 0.8``), with at least
    ``minimum`` in ``den``, while the branch is open."""
    return (
        f"(\n  sum by ({by}) ({num})\n/\n  sum by ({by}) ({den})\n) {test}\n"
        f"and on({by}) sum by ({by}) ({den}) >= {minimum}\n"
        f"{branch_open(cfg)}\n"
    )
