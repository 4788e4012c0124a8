"""The ticket lifecycle through the store: queues, waits, totals, late events."""

from __future__ import annotations

from typing import Any

import pytest

from branchwatch.contract import events as ev
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.floor import finished, tickets
from collector.floor.config import FloorConfig
from collector.store import Store
from collector.views import ServiceStats
from tests.floorfeed import FloorFeed

CONFIG = FloorConfig(wait_buckets=(60.0, 600.0), service_buckets=(30.0, 300.0))
LIMITS = DEFAULT_THRESHOLDS.replace(
    wait_target_seconds=120.0, wait_warning_seconds=300.0, wait_critical_seconds=900.0
)


class Feed(FloorFeed):
    def __init__(self, store: Store | None = None) -> None:
        super().__init__(store or Store(CONFIG, thresholds=LIMITS), device="q1", received=5000.0)

    def service(self, name: str) -> ServiceStats:
        return next(s for s in self.detail.services if s.service == name)

    def tickets(self) -> dict[str, tuple[str | None, str]]:
        return {t.ticket: (t.service, t.state) for t in self.detail.tickets}


def wait_buckets(store: Store, service: str) -> list[int]:
    """Cumulative wait bucket counts of one service, from the exposition."""
    prefix = f'branchwatch_wait_seconds_bucket{{region="r1",branch="b1",service="{service}",'
    return [
        int(line.rsplit(" ", 1)[1])
        for line in store.render().splitlines()
        if line.startswith(prefix)
    ]


@pytest.fixture
def feed() -> Feed:
    f = Feed()
    f(ev.BranchOpened, 1000)
    return f


def test_served_ticket_observes_wait_and_service_time(feed: Feed) -> None:
    feed(ev.TicketIssued, 1010, ticket="A1", service="cash")
    assert feed.tickets() == {"A1": ("cash", "waiting")}
    assert feed.service("cash").waiting == 1
    feed(ev.TicketCalled, 1100, ticket="A1", counter="c1")
    assert feed.tickets() == {"A1": ("cash", "called")}
    feed(ev.ServiceStarted, 1105, ticket="A1", counter="c1", teller="t1")
    assert feed.tickets() == {"A1": ("cash", "serving")}
    feed(ev.ServiceEnded, 1145, ticket="A1", counter="c1")
    cash = feed.service("cash")
    assert (cash.waiting, cash.issued, cash.served) == (0, 1, 1)
    assert (cash.wait_count, cash.wait_sum, cash.avg_wait) == (1, 90.0, 90.0)
    assert feed.tickets() == {}
    # wait 90 s: above 60, within 120 (the target bucket)
    assert wait_buckets(feed.store, "cash") == [0, 1, 1, 1, 1, 1]
    assert (
        'branchwatch_service_seconds_sum{region="r1",branch="b1",service="cash"} 40.0'
        in feed.store.render()
    )


def test_transferred_ticket_waits_again_in_the_new_service(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1030, ticket="A1", counter="c1")
    feed(ev.ServiceStarted, 1035, ticket="A1", counter="c1")
    feed(ev.TicketTransferred, 1060, ticket="A1", service="non_cash")
    assert feed.tickets() == {"A1": ("non_cash", "waiting")}
    assert feed.service("non_cash").waiting == 1
    assert feed.detail.oldest_wait_since == 1060.0  # waits from the transfer, not the issue
    feed(ev.TicketCalled, 1460, ticket="A1", counter="c2")
    feed(ev.ServiceStarted, 1470, ticket="A1", counter="c2")
    feed(ev.ServiceEnded, 1500, ticket="A1", counter="c2")
    cash, non_cash = feed.service("cash"), feed.service("non_cash")
    assert (cash.issued, cash.wait_count, cash.wait_sum) == (1, 1, 30.0)
    assert (non_cash.issued, non_cash.wait_count, non_cash.wait_sum) == (0, 1, 400.0)
    assert cash.served + non_cash.served == 1  # served once per ticket


def test_no_show_is_lost_and_leaves_the_floor(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="vip")
    feed(ev.TicketCalled, 1100, ticket="A1", counter="c1")
    feed(ev.TicketNoShow, 1200, ticket="A1")
    vip = feed.service("vip")
    assert vip.lost == {"no_show": 1, "walkout": 0, "closed": 0}
    assert (vip.served, vip.wait_count) == (0, 1)
    assert feed.tickets() == {}
    assert feed.detail.lost_total == 1


def test_walkout_leaves_the_queue_while_waiting(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketWalkout, 1300, ticket="A1")
    cash = feed.service("cash")
    assert (cash.waiting, cash.lost["walkout"], cash.wait_count) == (0, 1, 0)
    assert feed.tickets() == {}


def test_walkout_after_the_call_is_refused(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1100, ticket="A1", counter="c1")
    result = feed(ev.TicketWalkout, 1200, ticket="A1")
    assert result.rejected == {"bad_transition": 1}
    assert feed.service("cash").lost["walkout"] == 0
    assert feed.tickets() == {"A1": ("cash", "called")}


def test_branch_closed_loses_still_waiting_tickets_only(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketIssued, 1010, ticket="A2", service="cash")
    feed(ev.TicketIssued, 1020, ticket="B1", service="corporate")
    feed(ev.TicketCalled, 1100, ticket="A1", counter="c1")
    feed(ev.BranchClosed, 1800)
    assert feed.service("cash").lost == {"no_show": 0, "walkout": 0, "closed": 1}
    assert feed.service("corporate").lost["closed"] == 1
    assert feed.detail.waiting_total == 0
    assert feed.tickets() == {"A1": ("cash", "called")}  # being served: not lost
    assert "branchwatch_queue_oldest_issued_timestamp_seconds" not in "".join(
        line for line in feed.store.render().splitlines() if not line.startswith("#")
    )


def test_branch_opened_clears_leftovers_and_finished_ids(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1010, ticket="A1", counter="c1")
    feed(ev.TicketIssued, 1020, ticket="A2", service="cash")
    feed(ev.TicketNoShow, 1030, ticket="A1")
    feed(ev.BranchOpened, 90_000)
    assert feed.tickets() == {}
    assert feed.service("cash").waiting == 0
    assert feed.service("cash").lost["closed"] == 0  # cleared, not counted
    # ticket numbers start again on a new day
    assert feed(ev.TicketIssued, 90_010, ticket="A1", service="cash").applied == 1
    assert feed.tickets() == {"A1": ("cash", "waiting")}
    assert feed.service("cash").issued == 3


def test_unknown_service_is_refused_and_changes_nothing(feed: Feed) -> None:
    result = feed(ev.TicketIssued, 1000, ticket="A1", service="mortgage")
    assert (result.applied, result.rejected) == (0, {"unknown_service": 1})
    feed(ev.TicketIssued, 1000, ticket="A2", service="cash")
    result = feed(ev.TicketTransferred, 1010, ticket="A2", service="mortgage")
    assert result.rejected == {"unknown_service": 1}
    assert feed.tickets() == {"A2": ("cash", "waiting")}
    assert feed.detail.issued_total == 1


def test_an_id_issued_twice_while_live_is_refused(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    assert feed(ev.TicketIssued, 1005, ticket="A1", service="vip").rejected == {
        "duplicate_ticket": 1
    }
    assert feed.tickets() == {"A1": ("cash", "waiting")}
    assert feed.detail.issued_total == 1


def test_wait_is_clamped_at_zero(feed: Feed) -> None:
    feed(ev.TicketIssued, 1100, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1090, ticket="A1", counter="c1")  # device clocks disagree
    feed(ev.ServiceStarted, 1200, ticket="A1", counter="c1")
    feed(ev.ServiceEnded, 1150, ticket="A1", counter="c1")
    cash = feed.service("cash")
    assert (cash.wait_count, cash.wait_sum) == (1, 0.0)
    assert (
        'branchwatch_service_seconds_sum{region="r1",branch="b1",service="cash"} 0.0'
        in feed.store.render()
    )


def test_late_issue_after_the_call_counts_and_observes_but_never_queues(feed: Feed) -> None:
    feed(ev.TicketCalled, 1100, seq=3, ticket="A1", counter="c1")  # seq 2 (the issue) is missing
    assert feed.tickets() == {"A1": (None, "called")}
    result = feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    assert (result.late, result.applied) == (1, 0)
    cash = feed.service("cash")
    assert (cash.issued, cash.waiting, cash.wait_count, cash.wait_sum) == (1, 0, 1, 100.0)
    assert feed.tickets() == {"A1": ("cash", "called")}


def test_late_issue_of_a_finished_ticket_settles_every_total_once(feed: Feed) -> None:
    feed(ev.TicketCalled, 1100, seq=3, ticket="A1", counter="c1")
    feed(ev.ServiceStarted, 1110, seq=4, ticket="A1", counter="c1")
    feed(ev.ServiceEnded, 1170, seq=5, ticket="A1", counter="c1")
    assert feed.detail.served_total == 0  # the service is not known yet
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    cash = feed.service("cash")
    assert (cash.issued, cash.served, cash.waiting, cash.wait_sum) == (1, 1, 0, 100.0)
    assert feed.tickets() == {}
    assert (
        'branchwatch_service_seconds_count{region="r1",branch="b1",service="cash"} 1'
        in feed.store.render()
    )


def test_lost_before_the_issue_is_known_counts_once_the_service_is(feed: Feed) -> None:
    feed(ev.TicketNoShow, 1200, seq=5, ticket="A1")
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="vip")
    feed(ev.TicketCalled, 1100, seq=3, ticket="A1", counter="c1")
    vip = feed.service("vip")
    assert (vip.issued, vip.lost["no_show"], vip.waiting, vip.wait_sum) == (1, 1, 0, 100.0)
    assert feed.tickets() == {}


@pytest.mark.parametrize(
    ("late_cls", "fields"),
    [
        (ev.TicketTransferred, {"service": "vip"}),
        (ev.TicketIssued, {"service": "cash"}),
        (ev.TicketCalled, {"counter": "c9"}),
        (ev.ServiceStarted, {"counter": "c9"}),
    ],
)
def test_late_events_never_put_a_finished_ticket_back(
    feed: Feed, late_cls: type[ev.Event], fields: dict[str, Any]
) -> None:
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1100, seq=4, ticket="A1", counter="c1")
    feed(ev.TicketNoShow, 1200, seq=5, ticket="A1")
    before = feed.detail
    feed(late_cls, 1050, seq=3, ticket="A1", **fields)
    after = feed.detail
    assert after.tickets == [] and after.waiting_total == 0
    assert (after.issued_total, after.served_total, after.lost_total) == (
        before.issued_total,
        before.served_total,
        before.lost_total,
    )


def test_started_without_a_call_serves_and_a_late_call_observes_the_wait(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    feed(ev.ServiceStarted, 1130, seq=4, ticket="A1", counter="c1")
    cash = feed.service("cash")
    assert (cash.waiting, cash.served, cash.wait_count) == (0, 1, 0)
    feed(ev.TicketCalled, 1120, seq=3, ticket="A1", counter="c1")
    assert feed.service("cash").wait_sum == 120.0
    assert feed.tickets() == {"A1": ("cash", "serving")}


def test_late_transfer_after_the_next_call_does_not_requeue(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    feed(
        ev.TicketCalled, 1300, seq=5, ticket="A1", counter="c2"
    )  # 3 (call) and 4 (transfer) missing
    feed(ev.TicketTransferred, 1200, seq=4, ticket="A1", service="non_cash")
    assert feed.tickets() == {"A1": ("non_cash", "called")}
    assert feed.detail.waiting_total == 0


def test_a_previous_days_ticket_is_counted_but_not_queued(feed: Feed) -> None:
    feed(ev.TicketIssued, 900, ticket="Z9", service="cash")  # before today's opening (1000)
    assert feed.service("cash").issued == 1
    assert feed.tickets() == {}


def test_ticket_id_reused_after_it_ended_is_a_new_ticket(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketWalkout, 1010, ticket="A1")
    assert feed(ev.TicketIssued, 1005, ticket="A1", service="cash").rejected == {
        "duplicate_ticket": 1
    }
    assert feed(ev.TicketIssued, 2000, ticket="A1", service="cash").applied == 1
    assert feed.tickets() == {"A1": ("cash", "waiting")}
    assert feed.service("cash").issued == 2


def test_oldest_waiting_and_longest_wait(feed: Feed) -> None:
    feed(ev.TicketIssued, 1200, ticket="A2", service="cash")
    feed(ev.TicketIssued, 1100, ticket="A1", service="cash", vip=True)
    summary = feed.store.branch_summaries(now=1500.0)[0]
    assert (summary.oldest_wait_since, summary.longest_wait_seconds) == (1100.0, 400.0)
    assert summary.waiting == {"cash": 2, "non_cash": 0, "vip": 0, "corporate": 0}
    assert [(t.ticket, t.vip) for t in feed.detail.tickets] == [("A1", True), ("A2", False)]
    assert (
        'branchwatch_queue_oldest_issued_timestamp_seconds{region="r1",branch="b1",'
        'service="cash"} 1100.0' in feed.store.render()
    )


def test_transfer_of_an_unknown_ticket_queues_it_in_the_new_service(feed: Feed) -> None:
    feed(ev.TicketTransferred, 1200, seq=5, ticket="A1", service="non_cash")
    assert feed.tickets() == {"A1": ("non_cash", "waiting")}
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")  # late
    assert feed.tickets() == {"A1": ("non_cash", "waiting")}
    assert (feed.service("cash").issued, feed.service("cash").waiting) == (1, 0)
    assert (feed.service("non_cash").issued, feed.service("non_cash").waiting) == (0, 1)
    feed(ev.TicketCalled, 1300, seq=6, ticket="A1", counter="c1")
    assert feed.service("non_cash").wait_sum == 100.0


def test_service_events_of_an_unknown_ticket_wait_for_its_issue(feed: Feed) -> None:
    feed(ev.ServiceStarted, 1100, seq=5, ticket="A1", counter="c1")
    assert feed.tickets() == {"A1": (None, "serving")}
    feed(ev.ServiceEnded, 1190, seq=6, ticket="A1", counter="c1")
    feed(ev.ServiceEnded, 1500, seq=7, ticket="B1", counter="c2")  # nothing else known of B1
    assert (feed.tickets(), feed.detail.served_total) == ({}, 0)
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="vip")
    feed(ev.TicketIssued, 1400, seq=3, ticket="B1", service="cash")
    feed(ev.ServiceStarted, 1450, seq=4, ticket="B1", counter="c2")
    vip, cash = feed.service("vip"), feed.service("cash")
    assert (vip.issued, vip.served, vip.wait_count, vip.waiting) == (1, 1, 0, 0)
    assert (cash.issued, cash.served, cash.waiting) == (1, 1, 0)
    text = feed.store.render()
    assert 'branchwatch_service_seconds_sum{region="r1",branch="b1",service="vip"} 90.0' in text
    assert 'branchwatch_service_seconds_sum{region="r1",branch="b1",service="cash"} 50.0' in text


def test_events_of_the_segment_before_a_transfer_arrive_late(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, seq=2, ticket="A1", service="cash")
    feed(ev.TicketTransferred, 1200, seq=5, ticket="A1", service="vip")  # 3, 4 missing
    earlier: list[tuple[int, type[ev.Event], dict[str, Any]]] = [
        (3, ev.TicketCalled, {"counter": "c1"}),
        (4, ev.ServiceStarted, {"counter": "c1"}),
    ]
    for seq, cls, fields in earlier:
        assert feed(cls, 1100 + seq, seq=seq, ticket="A1", **fields).late == 1
        assert feed.tickets() == {"A1": ("vip", "waiting")}
    feed(ev.ServiceEnded, 1150, seq=6, ticket="A1", counter="c1")
    feed(ev.TicketNoShow, 1160, seq=7, ticket="A1")
    assert feed.tickets() == {"A1": ("vip", "waiting")}
    assert feed.service("vip").wait_count == 0


def test_replayed_terminal_events_count_once(feed: Feed) -> None:
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1010, ticket="A1", counter="c1")
    feed(ev.TicketNoShow, 1020, ticket="A1")
    feed(ev.TicketNoShow, 1020, ticket="A1")  # the device sent it twice
    feed(ev.ServiceEnded, 1030, ticket="A1", counter="c1")
    assert feed.service("cash").lost["no_show"] == 1
    assert feed.detail.served_total == 0


def test_live_tickets_are_capped(feed: Feed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tickets, "MAX_LIVE_TICKETS", 2)
    feed(ev.TicketIssued, 1000, ticket="A1", service="cash")
    feed(ev.TicketCalled, 1000, ticket="A2", counter="c1")
    new_ticket: list[tuple[type[ev.Event], dict[str, Any]]] = [
        (ev.TicketIssued, {"service": "cash"}),
        (ev.TicketCalled, {"counter": "c1"}),
        (ev.TicketTransferred, {"service": "vip"}),
        (ev.ServiceStarted, {"counter": "c1"}),
    ]
    for cls, fields in new_ticket:
        assert feed(cls, 1001, ticket="A3", **fields).rejected == {"too_many_tickets": 1}
    assert feed(ev.TicketNoShow, 1002, ticket="A3").applied == 1  # finished records are not capped
    assert set(feed.tickets()) == {"A1", "A2"}
    assert feed.detail.issued_total == 1


def test_finished_ids_are_remembered_up_to_a_bound(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finished, "MAX_FINISHED_TICKETS", 2)
    for n in (1, 2, 3):
        feed(ev.TicketIssued, 1000 + n, ticket=f"A{n}", service="cash")
        feed(ev.TicketWalkout, 1100 + n, ticket=f"A{n}")
    # A1 is forgotten: a late issue of it queues again; A3 is remembered: refused
    assert feed(ev.TicketIssued, 1050, ticket="A3", service="cash").rejected == {
        "duplicate_ticket": 1
    }
    assert feed(ev.TicketIssued, 1050, ticket="A1", service="cash").applied == 1
    assert feed.tickets() == {"A1": ("cash", "waiting")}
