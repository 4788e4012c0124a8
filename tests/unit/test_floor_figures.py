"""The bank's service figures through the Store: per-teller ratings and transactions (capped,
refusals counted), transfers, intercom hand-off times, and the business day's ``today``."""

from __future__ import annotations

import msgspec
import pytest

from branchwatch.contract import events as ev
from collector.floor.figures import INTERCOM_ACK_BUCKETS
from collector.floor.intercom import MAX_CALL_SECONDS
from collector.snapshot import MAGIC
from collector.store import Store
from collector.views import BranchDetail
from tests.unit.test_floor_tickets import CONFIG, LIMITS, Feed


def series(store: Store, family: str) -> dict[str, float]:
    """``{label text: value}`` of one family's samples (region/branch stripped)."""
    out = {}
    for line in store.render().splitlines():
        if line.startswith(family + "{"):
            labels, value = line[len(family) + 1 :].rsplit("} ", 1)
            out[labels.replace('region="r1",branch="b1"', "").lstrip(",")] = float(value)
    return out


def tellers(detail: BranchDetail) -> dict[str, tuple[int, int, dict[str, int]]]:
    return {t.teller: (t.served, t.requested, t.ratings) for t in detail.tellers}


@pytest.fixture
def feed() -> Feed:
    f = Feed(Store(msgspec.structs.replace(CONFIG, max_tellers=2), thresholds=LIMITS))
    f(ev.BranchOpened, 1000)
    return f


def serve(
    feed: Feed, ticket: str, ts: float, counter: str = "c1", teller: str | None = None
) -> None:
    feed(ev.TicketIssued, ts, ticket=ticket, service="cash")
    feed(ev.TicketCalled, ts + 60, ticket=ticket, counter=counter)
    feed(ev.ServiceStarted, ts + 70, ticket=ticket, counter=counter, teller=teller)
    feed(ev.ServiceEnded, ts + 170, ticket=ticket, counter=counter)


# -- tellers ---------------------------------------------------------------------------------


def test_ratings_and_transactions_belong_to_tellers(feed: Feed) -> None:
    feed(ev.CounterOpened, 1001, counter="c1", teller="t1")
    feed(ev.CounterOpened, 1002, counter="c2", teller="t2")
    assert series(feed.store, "branchwatch_teller_served_total") == {
        'teller="t1"': 0,  # series start at 0 when the teller starts work
        'teller="t2"': 0,
    }
    serve(feed, "A1", 1010)  # at c1: t1, the counter's teller
    serve(feed, "A2", 1020, counter="c1", teller="t2")  # t2 named by the start
    feed(ev.EvaluationRequested, 1200, counter="c1", ticket="A2")
    feed(ev.EvaluationSubmitted, 1201, counter="c1", ticket="A2", rating="satisfied")  # t2's
    feed(ev.EvaluationRequested, 1210, counter="c1")
    feed(ev.EvaluationSubmitted, 1211, counter="c1", rating="unsatisfied")  # c1's teller: t1
    feed(ev.EvaluationSubmitted, 1212, counter="c2", teller="t1", rating="very_satisfied")
    assert tellers(feed.detail) == {
        "t1": (1, 1, {"very_satisfied": 1, "satisfied": 0, "neutral": 0, "unsatisfied": 1}),
        "t2": (1, 1, {"very_satisfied": 0, "satisfied": 1, "neutral": 0, "unsatisfied": 0}),
    }
    ratings = series(feed.store, "branchwatch_teller_evaluations_total")
    assert ratings['teller="t1",rating="unsatisfied"'] == 1
    assert ratings['teller="t2",rating="satisfied"'] == 1
    assert len(ratings) == 2 * 4
    t1 = next(t for t in feed.detail.tellers if t.teller == "t1")
    assert (t1.satisfaction, t1.evaluation_rate, t1.evaluations_per_transaction) == (0.5, 2.0, 2.0)


def test_a_teller_beyond_the_cap_is_refused_for_the_label_but_counted_elsewhere(
    feed: Feed,
) -> None:
    feed(ev.CounterOpened, 1001, counter="c1", teller="t1")
    feed(ev.CounterOpened, 1002, counter="c2", teller="t2")
    result = feed(ev.EvaluationSubmitted, 1100, counter="c1", teller="t3", rating="neutral")
    assert result.applied == 1 and result.rejected == {}
    assert result.refused == {"too_many_tellers": 1}
    assert {t.teller for t in feed.detail.tellers} == {"t1", "t2"}
    counter = next(e for e in feed.detail.evaluations if e.counter == "c1")
    assert counter.ratings["neutral"] == 1  # the counter's figure still counts it
    today = feed.detail.today
    assert today is not None and today.ratings["neutral"] == 1
    assert {t.teller for t in today.tellers} == {"t1", "t2"}


def test_a_teller_not_seen_today_gives_its_place_to_a_new_one(feed: Feed) -> None:
    feed(ev.CounterOpened, 1001, counter="c1", teller="t1")
    feed(ev.CounterOpened, 1002, counter="c2", teller="t2")
    feed(ev.BranchClosed, 2000)
    feed(ev.BranchOpened, 90_000)  # the next day: t2 works, t1 does not
    feed(ev.CounterOpened, 90_001, counter="c2", teller="t2")
    result = feed(ev.CounterOpened, 90_002, counter="c1", teller="t3")
    assert result.refused == {}
    assert {t.teller for t in feed.detail.tellers} == {"t2", "t3"}
    # Both now worked today: a fourth is refused.
    assert feed(ev.CounterOpened, 90_003, counter="c3", teller="t4").refused == {
        "too_many_tellers": 1
    }


# -- transfers -------------------------------------------------------------------------------


def test_transfers_are_counted_per_service_pair_within_the_cap() -> None:
    config = msgspec.structs.replace(CONFIG, max_transfer_pairs=2)
    feed = Feed(Store(config, thresholds=LIMITS))
    feed(ev.BranchOpened, 1000)
    for n, (source, target) in enumerate(
        [("cash", "non_cash"), ("cash", "non_cash"), ("non_cash", "vip"), ("vip", "cash")]
    ):
        feed(ev.TicketIssued, 1010 + n, ticket=f"T{n}", service=source)
        result = feed(ev.TicketTransferred, 1100 + n, ticket=f"T{n}", service=target)
    assert result.refused == {"too_many_transfer_pairs": 1}  # the third pair
    assert feed.service("cash").waiting == 1  # ...still transferred: T3 waits for cash
    assert series(feed.store, "branchwatch_tickets_transferred_total") == {
        'from_service="cash",to_service="non_cash"': 2,
        'from_service="non_cash",to_service="vip"': 1,
    }


def test_a_transfer_seen_before_its_issue_is_counted_once_the_issue_arrives(feed: Feed) -> None:
    feed(ev.TicketTransferred, 1100, seq=5, ticket="T1", service="vip")
    assert series(feed.store, "branchwatch_tickets_transferred_total") == {}
    feed(ev.TicketIssued, 1010, seq=4, ticket="T1", service="cash")  # replayed late
    assert series(feed.store, "branchwatch_tickets_transferred_total") == {
        'from_service="cash",to_service="vip"': 1
    }
    assert feed.service("vip").waiting == 1


def test_a_transfer_replayed_after_the_ticket_finished_still_counts(feed: Feed) -> None:
    feed(ev.TicketIssued, 1010, seq=2, ticket="T1", service="cash")
    feed(ev.TicketCalled, 1200, seq=4, ticket="T1", counter="c1")
    feed(ev.ServiceStarted, 1210, seq=5, ticket="T1", counter="c1")
    feed(ev.ServiceEnded, 1300, seq=6, ticket="T1", counter="c1")
    feed(ev.TicketTransferred, 1100, seq=3, ticket="T1", service="vip")
    assert series(feed.store, "branchwatch_tickets_transferred_total") == {
        'from_service="cash",to_service="vip"': 1
    }


# -- intercom --------------------------------------------------------------------------------


def ack_histogram(store: Store, source: int, target: str) -> list[float]:
    """Cumulative buckets, then sum and count, of one pair."""
    pair = f'from_position="{source}",to_position="{target}"'
    family = "branchwatch_intercom_ack_seconds"
    buckets = series(store, family + "_bucket")
    return [
        *(buckets[f'{pair},le="{le}"'] for le in ("30.0", "120.0", "+Inf")),
        series(store, family + "_sum")[pair],
        series(store, family + "_count")[pair],
    ]


def test_a_call_is_closed_by_the_called_posts_first_ack(feed: Feed) -> None:
    assert len(INTERCOM_ACK_BUCKETS) == 2
    feed(ev.IntercomCall, 1100, from_position=1, to_position=7, reason="vip")
    feed(ev.IntercomCall, 1110, from_position=1, to_position=7, reason="vip")  # again
    feed(ev.IntercomAck, 1130, position=3)  # another post: not an answer
    feed(ev.IntercomAck, 1150, position=7, notice="n-1")  # a notice's ack: not an answer
    feed(ev.IntercomAck, 1160, position=7)  # 60 s after the first call
    feed(ev.IntercomAck, 1170, position=7)  # nothing open any more
    assert ack_histogram(feed.store, 1, "7") == [0, 1, 1, 60.0, 1]


def test_an_all_call_is_closed_by_any_post(feed: Feed) -> None:
    feed(ev.IntercomCall, 1100, from_position=4, reason="backup")
    feed(ev.IntercomAck, 1110, position=2)
    assert ack_histogram(feed.store, 4, "all") == [1, 1, 1, 10.0, 1]


def test_a_call_replayed_after_its_ack_still_finds_it(feed: Feed) -> None:
    feed(ev.IntercomAck, 1125, seq=3, position=7)
    feed(ev.IntercomCall, 1100, seq=2, from_position=1, to_position=7, reason="vip")
    assert ack_histogram(feed.store, 1, "7") == [1, 1, 1, 25.0, 1]


def test_a_call_never_answered_in_time_is_forgotten(feed: Feed) -> None:
    feed(ev.IntercomCall, 1100, from_position=1, to_position=7, reason="vip")
    feed(ev.IntercomAck, 1100 + MAX_CALL_SECONDS + 1, position=7)
    assert ack_histogram(feed.store, 1, "7") == [0, 0, 0, 0.0, 0]


def test_intercom_pairs_beyond_the_cap_are_refused_and_counted() -> None:
    feed = Feed(Store(msgspec.structs.replace(CONFIG, max_intercom_pairs=1), thresholds=LIMITS))
    feed(ev.BranchOpened, 1000)
    feed(ev.IntercomCall, 1100, from_position=1, to_position=7, reason="vip")
    result = feed(ev.IntercomCall, 1101, from_position=3, to_position=2, reason="assist")
    assert (result.applied, result.refused) == (1, {"too_many_intercom_pairs": 1})
    feed(ev.IntercomAck, 1110, position=2)
    assert series(feed.store, "branchwatch_intercom_ack_seconds_count") == {
        'from_position="1",to_position="7"': 0
    }
    assert feed(ev.IntercomCall, 1120, from_position=1, to_position=99, reason="vip").rejected == {
        "unknown_position": 1
    }


def test_an_intercom_pair_not_called_today_gives_its_place_to_a_new_one() -> None:
    feed = Feed(Store(msgspec.structs.replace(CONFIG, max_intercom_pairs=1), thresholds=LIMITS))
    feed(ev.BranchOpened, 1000)
    feed(ev.IntercomCall, 1100, from_position=5, to_position=2, reason="assist")
    feed(ev.IntercomAck, 1110, position=2)
    feed(ev.BranchClosed, 2000)
    feed(ev.BranchOpened, 90_000)
    assert feed(ev.IntercomCall, 90_100, from_position=1, to_position=7, reason="vip").refused == {}
    feed(ev.IntercomAck, 90_120, position=7)
    assert series(feed.store, "branchwatch_intercom_ack_seconds_count") == {
        'from_position="1",to_position="7"': 1
    }
    result = feed(ev.IntercomCall, 90_200, from_position=5, to_position=2, reason="assist")
    assert result.refused == {"too_many_intercom_pairs": 1}  # 1 -> 7 was called today


# -- the business day ------------------------------------------------------------------------


def test_today_counts_the_day_and_starts_again_at_the_next_opening(feed: Feed) -> None:
    feed(ev.CounterOpened, 1001, counter="c1", teller="t1")
    serve(feed, "A1", 1010)  # waited 60 s: within the 120 s target
    feed(ev.TicketIssued, 1020, ticket="A2", service="cash")
    feed(ev.TicketCalled, 1320, ticket="A2", counter="c1")  # waited 300 s
    feed(ev.TicketNoShow, 1330, ticket="A2")
    feed(ev.TicketIssued, 1400, ticket="A3", service="cash")
    feed(ev.EvaluationRequested, 1200, counter="c1", ticket="A1")
    feed(ev.EvaluationSubmitted, 1201, counter="c1", ticket="A1", rating="very_satisfied")
    feed(ev.EvaluationRequested, 1210, counter="c1")
    feed(ev.EvaluationExpired, 1220, counter="c1")
    feed(ev.BranchClosed, 2000)  # A3 is lost as closed
    today = feed.detail.today
    assert today is not None
    assert (today.opened_ts, today.closed_ts) == (1000.0, 2000.0)
    assert (today.issued, today.served, today.called, today.transactions) == (3, 1, 2, 1)
    assert today.lost == {"no_show": 1, "walkout": 0, "closed": 1}
    assert (today.avg_wait, today.service_level) == (180.0, 0.5)
    assert (today.requested, today.expired, today.satisfaction) == (2, 1, 1.0)
    assert (today.evaluation_rate, today.evaluations_per_transaction) == (0.5, 1.0)
    assert [(t.teller, t.served, t.satisfaction) for t in today.tellers] == [("t1", 1, 1.0)]
    cash = next(s for s in feed.detail.today_services if s.service == "cash")
    assert (cash.issued, cash.avg_wait, cash.service_level) == (3, 180.0, 0.5)

    feed(ev.BranchOpened, 90_000)
    today = feed.detail.today
    assert today is not None and (today.opened_ts, today.closed_ts) == (90_000.0, None)
    assert (today.issued, today.called, today.avg_wait, today.tellers) == (0, 0, None, [])
    assert feed.detail.issued_total == 3  # the exported totals carry on


def test_late_events_count_for_the_day_they_belong_to(feed: Feed) -> None:
    feed(ev.BranchOpened, 90_000, seq=10)  # the next day is known first
    feed(ev.TicketIssued, 1010, seq=2, ticket="A1", service="cash")  # yesterday's, late
    feed(ev.TicketIssued, 90_010, seq=11, ticket="B1", service="cash")
    feed(ev.TicketCalled, 90_100, seq=13, ticket="B1", counter="c1")
    feed(ev.TicketIssued, 90_050, seq=12, ticket="B2", service="cash")  # today's, late
    today = feed.detail.today
    assert today is not None
    assert (today.issued, today.called, today.avg_wait) == (2, 1, 90.0)
    assert feed.detail.issued_total == 3


def test_today_is_none_until_the_branch_opens() -> None:
    feed = Feed()
    feed(ev.TicketIssued, 1010, ticket="A1", service="cash")
    assert feed.detail.today is None
    assert feed.detail.today_services == []
    summaries = feed.store.branch_summaries(now=5000.0)
    assert summaries[0].today is None


def test_figures_survive_a_snapshot_and_an_old_snapshot_loads(feed: Feed) -> None:
    feed(ev.CounterOpened, 1001, counter="c1", teller="t1")
    serve(feed, "A1", 1010)
    feed(ev.IntercomCall, 1100, from_position=1, to_position=7, reason="vip")
    restored = Store.restore(
        msgspec.structs.replace(CONFIG, max_tellers=2), feed.store.snapshot(), thresholds=LIMITS
    )
    assert restored.render() == feed.store.render()
    after = Feed(restored)
    after.seq = feed.seq
    after(ev.IntercomAck, 1130, position=7)  # the open call survived
    assert ack_histogram(restored, 1, "7") == [1, 1, 1, 30.0, 1]
    before = restored.branch_detail("r1", "b1", now=5000.0)
    assert before is not None and before.today is not None and before.today.transactions == 1

    # A snapshot written before these figures existed: the fields are simply absent.
    document = msgspec.msgpack.decode(feed.store.snapshot()[len(MAGIC) :])
    for branch in document["branches"]:
        for field in ("tellers", "transfers", "intercom", "today", "refused"):
            del branch[field]
    old = Store.restore(CONFIG, MAGIC + msgspec.msgpack.encode(document), thresholds=LIMITS)
    detail = old.branch_detail("r1", "b1", now=5000.0)
    assert detail is not None and detail.today is None and detail.tellers == []
    assert detail.issued_total == 1
    Feed(old)(ev.BranchOpened, 90_000, seq=100)  # the next opening starts a day
    detail = old.branch_detail("r1", "b1", now=90_000.0)
    assert detail is not None and detail.today is not None
