"""JSON views of the business day (the API's ``today``) and of the tellers (field names are stable).

``today`` holds the figures of the branch's current business day: from its
newest ``branch.opened`` on (``opened_ts``), ended by ``branch.closed``
(``closed_ts``; null while open), kept until the next opening. The teller
``totals`` are what the collector exports as counters (since it started or
since its snapshot): Prometheus turns them into any window it holds.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from collector.floor.branch import LOST_REASONS
from collector.floor.figures import DayFigures, ServiceDay, TellerFigures

GOOD_RATINGS = ("very_satisfied", "satisfied")


class TellerView(msgspec.Struct):
    teller: str
    served: int  # transactions the teller started and that ended
    requested: int  # ratings asked for
    ratings: dict[str, int]
    satisfaction: float | None  # (very_satisfied + satisfied) / ratings
    evaluation_rate: float | None  # ratings / requests
    evaluations_per_transaction: float | None  # ratings / served


class DayServiceView(msgspec.Struct):
    service: str
    issued: int
    served: int  # service started
    lost: dict[str, int]
    called: int
    avg_wait: float | None  # of the day's called tickets, seconds
    service_level: float | None  # share called within the wait target (our addition)
    transactions: int  # service ended


class DayView(msgspec.Struct, kw_only=True):
    opened_ts: float
    closed_ts: float | None  # None while the day runs
    issued: int
    served: int
    lost: dict[str, int]  # by reason
    called: int
    avg_wait: float | None  # the bank's figure: average wait of the day's called tickets
    service_level: float | None  # share called within the wait target (our addition)
    transactions: int  # service.ended
    requested: int
    expired: int
    ratings: dict[str, int]
    satisfaction: float | None
    evaluation_rate: float | None  # ratings / requests
    evaluations_per_transaction: float | None  # ratings / transactions
    tellers: list[TellerView]


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def satisfaction(ratings: dict[str, int]) -> float | None:
    return ratio(sum(ratings[r] for r in GOOD_RATINGS), sum(ratings.values()))


def tellers_view(tellers: dict[str, TellerFigures]) -> list[TellerView]:
    views = []
    for teller, figures in sorted(tellers.items()):
        rated = figures.ratings.total()
        ratings = figures.ratings.as_dict()
        views.append(
            TellerView(
                teller=teller,
                served=figures.served,
                requested=figures.requested,
                ratings=ratings,
                satisfaction=satisfaction(ratings),
                evaluation_rate=ratio(rated, figures.requested),
                evaluations_per_transaction=ratio(rated, figures.served),
            )
        )
    return views


def _total(days: Iterable[ServiceDay], field: str) -> int:
    return sum(int(getattr(day, field)) for day in days)


def day_view(today: DayFigures | None) -> DayView | None:
    if today is None:
        return None
    days = today.services.values()
    called, transactions = _total(days, "called"), _total(days, "ended")
    rated = today.ratings.total()
    ratings = today.ratings.as_dict()
    return DayView(
        opened_ts=today.opened_ts,
        closed_ts=today.closed_ts,
        issued=_total(days, "issued"),
        served=_total(days, "served"),
        lost={reason: sum(day.lost[reason] for day in days) for reason in LOST_REASONS},
        called=called,
        avg_wait=ratio(sum(day.wait_sum for day in days), called),
        service_level=ratio(_total(days, "within_target"), called),
        transactions=transactions,
        requested=today.requested,
        expired=today.expired,
        ratings=ratings,
        satisfaction=satisfaction(ratings),
        evaluation_rate=ratio(rated, today.requested),
        evaluations_per_transaction=ratio(rated, transactions),
        tellers=tellers_view(today.tellers),
    )


def day_services_view(today: DayFigures | None) -> list[DayServiceView]:
    if today is None:
        return []
    return [
        DayServiceView(
            service=service,
            issued=day.issued,
            served=day.served,
            lost=day.lost.as_dict(),
            called=day.called,
            avg_wait=ratio(day.wait_sum, day.called),
            service_level=ratio(day.within_target, day.called),
            transactions=day.ended,
        )
        for service, day in today.services.items()
    ]
