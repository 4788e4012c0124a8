"""The report's figures, computed from counts Prometheus gave, and the two rankings.

Everything here is pure (no I/O): :mod:`branchwatch.report.query` fills
:class:`BranchCounts` and :class:`TellerCounts`; this module turns them into
ratios, checks them against the deployment's :class:`~branchwatch.thresholds.Thresholds`
and ranks branches (worst first) and tellers (best first, the service star).

Counts come from ``increase()`` over the period, so they may carry a fraction
(Prometheus extrapolates a counter's rise to the window's edges); ratios of two
counts of the same series are unaffected.

The branch ranking rule, worst first:

1. more targets missed (of the four below; a figure without data misses nothing);
2. then a higher average wait relative to its target;
3. then a larger share of open time with post 1 empty;
4. then a lower satisfaction, then more walkouts; then region and branch by name.

The targets: average wait ≤ ``average_wait_target_seconds`` (the bank's figure),
service level ≥ ``service_level_target`` (our addition: the share called within
``wait_target_seconds``), satisfaction ≥ ``satisfaction_target``, evaluation rate
(ratings ÷ requests) ≥ ``evaluation_rate_target``.

Tellers are ranked by satisfaction, then by more ratings, among those with at least
``min_ratings`` ratings in the period; the first is the period's service star.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Final, Literal

from branchwatch.report.period import Period
from branchwatch.thresholds import Thresholds

TargetName = Literal["average_wait", "service_level", "satisfaction", "evaluation_rate"]
TARGETS: Final[tuple[TargetName, ...]] = (
    "average_wait",
    "service_level",
    "satisfaction",
    "evaluation_rate",
)
DEFAULT_WORST: Final = 10
DEFAULT_MIN_RATINGS: Final = 10
# The ranking rule in one sentence, as the report prints it (the docstring above explains).
RANKING_RULE: Final = (
    "worst first: most targets missed (average wait, service level, satisfaction, "
    "evaluation rate; no data misses nothing), then the highest average wait against its "
    "target, then the largest share of open time with post 1 empty, then the lowest "
    "satisfaction, then the most walkouts"
)
TELLER_RULE: Final = "best first: highest satisfaction, then most ratings"
NO_TELLER_DATA: Final = "no per-teller data in this period"


@dataclass
class BranchCounts:
    """What Prometheus says one branch (or a region's branches summed) did in the period."""

    region: str
    branch: str  # "" for a region's total
    issued: float = 0.0
    served: float = 0.0  # tickets whose service started
    walkouts: float = 0.0
    waits: float = 0.0  # tickets called (the wait histogram's count)
    wait_seconds: float = 0.0  # their waits added up (the histogram's sum)
    # Called within wait_target_seconds; None: the collector has no bucket at that bound.
    within_target: float | None = None
    ratings: float = 0.0
    good_ratings: float = 0.0  # very_satisfied + satisfied
    requested: float = 0.0  # ratings requested on the evaluator pads
    open_minutes: float = 0.0  # sampled: minutes the branch was open
    post1_empty_minutes: float = 0.0  # sampled: open with nobody at post 1
    notices_unanswered: float = 0.0  # floor notice chains nobody acknowledged
    device_down_minutes: float = 0.0  # sampled: device-minutes down while open
    devices_down: int = 0  # devices found down at least once while open

    def add(self, other: BranchCounts) -> None:
        """Add ``other``'s counts to these (a region's total)."""
        for spec in fields(self):
            if spec.name not in ("region", "branch", "within_target"):
                setattr(self, spec.name, getattr(self, spec.name) + getattr(other, spec.name))
        # A total's share within target is known only while every part with waits has it.
        if self.within_target is None or (other.within_target is None and other.waits):
            self.within_target = None
        else:
            self.within_target += other.within_target or 0.0


def ratio(part: float | None, whole: float) -> float | None:
    """``part / whole``, or None when there is nothing to divide (no data is not zero)."""
    return None if part is None or whole <= 0 else part / whole


@dataclass
class Check:
    """One figure against its target."""

    target: TargetName
    value: float | None
    goal: float
    lower_is_better: bool

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.goal if self.lower_is_better else self.value >= self.goal


@dataclass
class BranchFigures:
    """A branch's (or region's) figures for the period and how they compare to targets."""

    counts: BranchCounts
    average_wait_seconds: float | None
    service_level: float | None
    satisfaction: float | None
    ratings_per_request: float | None  # the evaluation rate of the bank's plan
    ratings_per_served: float | None  # ratings per transaction
    post1_empty_share: float | None  # of open time
    checks: dict[TargetName, Check] = field(default_factory=dict)
    rank: int = 0  # 1 = worst (branches only)

    @property
    def missed(self) -> int:
        return sum(1 for check in self.checks.values() if check.met is False)

    @property
    def wait_against_target(self) -> float:
        check = self.checks.get("average_wait")
        if check is None or check.value is None:
            return 0.0
        return check.value / check.goal


def figures_of(counts: BranchCounts, thresholds: Thresholds) -> BranchFigures:
    average_wait = ratio(counts.wait_seconds, counts.waits)
    service_level = ratio(counts.within_target, counts.waits)
    satisfaction = ratio(counts.good_ratings, counts.ratings)
    per_request = ratio(counts.ratings, counts.requested)
    checks: dict[TargetName, Check] = {
        "average_wait": Check(
            "average_wait", average_wait, thresholds.average_wait_target_seconds, True
        ),
        "service_level": Check(
            "service_level", service_level, thresholds.service_level_target, False
        ),
        "satisfaction": Check("satisfaction", satisfaction, thresholds.satisfaction_target, False),
        "evaluation_rate": Check(
            "evaluation_rate", per_request, thresholds.evaluation_rate_target, False
        ),
    }
    return BranchFigures(
        counts=counts,
        average_wait_seconds=average_wait,
        service_level=service_level,
        satisfaction=satisfaction,
        ratings_per_request=per_request,
        ratings_per_served=ratio(counts.ratings, counts.served),
        post1_empty_share=ratio(counts.post1_empty_minutes, counts.open_minutes),
        checks=checks,
    )


def _badness(f: BranchFigures) -> tuple[float, ...]:
    """Sort key: the ranking rule of this module's docstring (smaller sorts first = worse)."""
    return (
        -f.missed,
        -f.wait_against_target,
        -(f.post1_empty_share or 0.0),
        f.satisfaction if f.satisfaction is not None else 1.0,
        -f.counts.walkouts,
    )


def rank_branches(figures: Iterable[BranchFigures]) -> list[BranchFigures]:
    """Worst first; ``rank`` set from 1."""
    ranked = sorted(figures, key=lambda f: (_badness(f), f.counts.region, f.counts.branch))
    for rank, f in enumerate(ranked, 1):
        f.rank = rank
    return ranked


def region_totals(figures: Sequence[BranchFigures], thresholds: Thresholds) -> list[BranchFigures]:
    """One :class:`BranchFigures` per region, from its branches' counts added up."""
    totals: dict[str, BranchCounts] = {}
    for f in figures:
        region = f.counts.region
        total = totals.setdefault(region, BranchCounts(region=region, branch="", within_target=0.0))
        total.add(f.counts)
    return [figures_of(totals[region], thresholds) for region in sorted(totals)]


@dataclass
class TellerCounts:
    region: str
    branch: str
    teller: str
    ratings: float = 0.0
    good_ratings: float = 0.0
    served: float = 0.0  # transactions the teller served


@dataclass
class TellerFigures:
    counts: TellerCounts
    satisfaction: float | None
    ratings_per_served: float | None
    meets_target: bool | None
    rank: int = 0  # 1 = the service star; 0 = not ranked (too few ratings)


def teller_figures(counts: TellerCounts, thresholds: Thresholds) -> TellerFigures:
    satisfaction = ratio(counts.good_ratings, counts.ratings)
    return TellerFigures(
        counts=counts,
        satisfaction=satisfaction,
        ratings_per_served=ratio(counts.ratings, counts.served),
        meets_target=None
        if satisfaction is None
        else satisfaction >= thresholds.satisfaction_target,
    )


def rank_tellers(
    tellers: Iterable[TellerFigures], min_ratings: int
) -> tuple[list[TellerFigures], list[TellerFigures]]:
    """(ranked best first with ``rank`` from 1, too few ratings to rank)."""
    ranked: list[TellerFigures] = []
    unranked: list[TellerFigures] = []
    for teller in tellers:
        enough = teller.satisfaction is not None and teller.counts.ratings >= min_ratings
        (ranked if enough else unranked).append(teller)
    ranked.sort(
        key=lambda t: (
            -(t.satisfaction or 0.0),
            -t.counts.ratings,
            t.counts.region,
            t.counts.branch,
            t.counts.teller,
        )
    )
    for rank, teller in enumerate(ranked, 1):
        teller.rank = rank
    unranked.sort(key=lambda t: (t.counts.region, t.counts.branch, t.counts.teller))
    return ranked, unranked


@dataclass
class Report:
    """Everything one report shows, in the order it shows it."""

    period: Period
    window_end: float  # the period's end, or when the report was made while it runs
    prometheus: str
    regions: tuple[str, ...]  # asked for; () = every region
    thresholds: Thresholds
    step_seconds: float  # sampling step of the minute figures
    min_ratings: int
    worst: int  # how many branches the "worst" table shows
    regions_figures: list[BranchFigures]
    branches: list[BranchFigures]  # ranked, worst first
    tellers: list[TellerFigures]  # ranked, the service star first
    tellers_unranked: list[TellerFigures]

    @property
    def complete(self) -> bool:
        return self.window_end >= self.period.end.timestamp()

    @property
    def service_star(self) -> TellerFigures | None:
        return self.tellers[0] if self.tellers else None

    @property
    def has_teller_data(self) -> bool:
        return bool(self.tellers or self.tellers_unranked)


def build_report(
    branches: Iterable[BranchCounts],
    tellers: Iterable[TellerCounts],
    *,
    period: Period,
    window_end: float,
    prometheus: str,
    regions: tuple[str, ...],
    thresholds: Thresholds,
    step_seconds: float,
    min_ratings: int = DEFAULT_MIN_RATINGS,
    worst: int = DEFAULT_WORST,
) -> Report:
    branch_figures = [figures_of(counts, thresholds) for counts in branches]
    ranked, unranked = rank_tellers(
        (teller_figures(counts, thresholds) for counts in tellers), min_ratings
    )
    return Report(
        period=period,
        window_end=window_end,
        prometheus=prometheus,
        regions=regions,
        thresholds=thresholds,
        step_seconds=step_seconds,
        min_ratings=min_ratings,
        worst=worst,
        regions_figures=region_totals(branch_figures, thresholds),
        branches=rank_branches(branch_figures),
        tellers=ranked,
        tellers_unranked=unranked,
    )
