"""What every family renderer shares: label text built once, numbers, histograms, rows.

The exposition is Prometheus text format 0.0.4. A renderer writes one family's lines for
one branch; ``p`` is that branch's ``region="…",branch="…"`` label text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from branchwatch.contract import metrics
from branchwatch.contract.ids import RATINGS
from branchwatch.contract.metrics import bucket_label
from collector.floor.branch import Histogram, Ratings
from collector.floor.config import FloorRules
from collector.floor.figures import INTERCOM_ACK_BUCKETS
from collector.notices.state import ACK_BUCKETS, KINDS

Row = TypeVar("Row")  # a counter, teller or agent: one row of a labelled family


def escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def num(value: float) -> str:
    return repr(float(value))


def branch_labels(region: str, branch: str) -> str:
    """The label text every series of a branch starts with."""
    return f'region="{escape(region)}",branch="{escape(branch)}"'


class Labels:
    """Label text that depends only on the config, built once."""

    def __init__(self, rules: FloorRules, notices: bool) -> None:
        self.service = {s: f',service="{escape(s)}"' for s in rules.services}
        self.position = {p: f',position="{p}"' for p in rules.post_names}
        self.wait_le = le_labels(rules.wait_buckets)
        self.service_le = le_labels(rules.service_buckets)
        self.notices = notices  # render the notice families (else they stay empty)
        self.kind = {k: f',kind="{k}"' for k in KINDS}
        self.ack_le = le_labels(ACK_BUCKETS)
        self.intercom_le = le_labels(INTERCOM_ACK_BUCKETS)


def le_labels(buckets: tuple[float, ...]) -> tuple[str, ...]:
    return (*(f',le="{bucket_label(b)}"' for b in buckets), ',le="+Inf"')


def histogram(
    family: metrics.MetricFamily, p: str, extra: str, les: tuple[str, ...], h: Histogram
) -> str:
    """A histogram's bucket, sum and count lines; ``extra`` is its label text past ``p``."""
    bucket = f"{family.bucket}{{{p}{extra}"
    lines = []
    total = 0
    for le, count in zip(les, h.counts, strict=True):
        total += count
        lines.append(f"{bucket}{le}}} {total}\n")
    lines.append(f"{family.sum}{{{p}{extra}}} {num(h.sum)}\n")
    lines.append(f"{family.count}{{{p}{extra}}} {h.count}\n")
    return "".join(lines)


def per_name(
    family: metrics.MetricFamily,
    p: str,
    label: str,
    rows: Mapping[str, Row],
    value: Callable[[Row], object],
) -> str:
    """One line per row (a counter, teller or agent, sorted by name), its ``value``."""
    head = f"{family.name}{{{p}"
    return "".join(f'{head},{label}="{escape(n)}"}} {value(rows[n])}\n' for n in sorted(rows))


def per_name_rating(
    family: metrics.MetricFamily,
    p: str,
    label: str,
    rows: Mapping[str, Row],
    ratings: Callable[[Row], Ratings],
) -> str:
    """One line per row and rating."""
    head = f"{family.name}{{{p}"
    return "".join(
        f'{head},{label}="{escape(n)}",rating="{rating}"}} {count}\n'
        for n in sorted(rows)
        for rating, count in zip(RATINGS, ratings(rows[n]).counts(), strict=True)
    )
