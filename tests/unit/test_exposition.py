# ruff: noqa: E501 - exposition lines are long by nature
"""Exposition: exact text, family grouping across branches, dirty-only re-render."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from branchwatch.contract import events as ev
from branchwatch.contract import metrics
from branchwatch.contract.messages import DeviceStatus, Status
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.exposition import texts
from collector.floor.config import FloorConfig, PostConfig
from collector.store import Store
from tests.unit.events import E

CONFIG = FloorConfig(
    services=("cash",),
    posts=(PostConfig(1, "door"), PostConfig(2, "machines")),
    backfill_order=(),
    wait_buckets=(60.0,),
    service_buckets=(30.0,),
)
LIMITS = DEFAULT_THRESHOLDS.replace(
    wait_target_seconds=100.0, wait_warning_seconds=200.0, wait_critical_seconds=300.0
)

FAMILY_ORDER = [family.name for family in metrics.FLOOR]


def scenario(store: Store, region: str = "north", branch: str = "b1") -> None:
    status = Status(
        v=1,
        state="online",
        session=2,
        ts=999.0,
        version="1.2.3",
        devices={"q1": DeviceStatus(kind="queue", link="up", bad_frames={"bad_args": 2})},
    )
    store.apply_status(region, branch, "a1", status, received=999.5)
    events = [
        E(ev.BranchOpened, 1, 1000.0),
        E(ev.PositionStaffed, 2, 1001.0, position=1, staff="lm"),
        E(ev.CounterOpened, 3, 1002.0, counter="c1", kind="high", teller="t1"),
        E(ev.TicketIssued, 4, 1010.0, ticket="A1", service="cash"),
        E(ev.TicketIssued, 5, 1020.0, ticket="A2", service="cash"),
        E(ev.TicketIssued, 6, 1030.0, ticket="A3", service="cash"),
        E(ev.TicketCalled, 7, 1100.0, ticket="A1", counter="c1"),  # waited 90 s
        E(ev.ServiceStarted, 8, 1105.0, ticket="A1", counter="c1"),
        E(ev.ServiceEnded, 9, 1125.0, ticket="A1", counter="c1"),  # served 20 s
        E(ev.TicketCalled, 10, 1250.0, ticket="A2", counter="c1"),  # waited 230 s
        E(ev.EvaluationRequested, 11, 1126.0, counter="c1"),
        E(ev.EvaluationSubmitted, 12, 1127.0, counter="c1", rating="very_satisfied"),
        E(ev.DeviceFault, 13, 1200.0, fault="paper_low"),
        E(ev.IntercomCall, 14, 1210.0, from_position=1, to_position=2, reason="handoff"),
        E(ev.IntercomAck, 15, 1240.0, position=2),  # answered in 30 s
        E(ev.TicketTransferred, 16, 1260.0, ticket="A3", service="cash"),  # waits again
    ]
    store.apply_events(region, branch, "a1", events, received=1300.0)


EXPECTED = """\
# HELP branchwatch_branch_open 1 while the branch is open.
# TYPE branchwatch_branch_open gauge
branchwatch_branch_open{region="north",branch="b1"} 1
# HELP branchwatch_branch_opened_timestamp_seconds When (event time, Unix seconds) the branch's business day began: its newest branch.opened; absent until one is seen.
# TYPE branchwatch_branch_opened_timestamp_seconds gauge
branchwatch_branch_opened_timestamp_seconds{region="north",branch="b1"} 1000.0
# HELP branchwatch_queue_waiting Tickets waiting to be called.
# TYPE branchwatch_queue_waiting gauge
branchwatch_queue_waiting{region="north",branch="b1",service="cash"} 1
# HELP branchwatch_queue_oldest_issued_timestamp_seconds Since when (event time, Unix seconds) the longest-waiting ticket waits; absent while the queue is empty.
# TYPE branchwatch_queue_oldest_issued_timestamp_seconds gauge
branchwatch_queue_oldest_issued_timestamp_seconds{region="north",branch="b1",service="cash"} 1260.0
# HELP branchwatch_tickets_issued_total Tickets issued.
# TYPE branchwatch_tickets_issued_total counter
branchwatch_tickets_issued_total{region="north",branch="b1",service="cash"} 3
# HELP branchwatch_tickets_served_total Tickets whose service started.
# TYPE branchwatch_tickets_served_total counter
branchwatch_tickets_served_total{region="north",branch="b1",service="cash"} 1
# HELP branchwatch_tickets_lost_total Tickets that ended without service: no_show, walkout, or still waiting at closing.
# TYPE branchwatch_tickets_lost_total counter
branchwatch_tickets_lost_total{region="north",branch="b1",service="cash",reason="no_show"} 0
branchwatch_tickets_lost_total{region="north",branch="b1",service="cash",reason="walkout"} 0
branchwatch_tickets_lost_total{region="north",branch="b1",service="cash",reason="closed"} 0
# HELP branchwatch_tickets_transferred_total Tickets referred from one service's queue to another's.
# TYPE branchwatch_tickets_transferred_total counter
branchwatch_tickets_transferred_total{region="north",branch="b1",from_service="cash",to_service="cash"} 1
# HELP branchwatch_wait_seconds Wait from issue (or transfer) until called, in seconds.
# TYPE branchwatch_wait_seconds histogram
branchwatch_wait_seconds_bucket{region="north",branch="b1",service="cash",le="60.0"} 0
branchwatch_wait_seconds_bucket{region="north",branch="b1",service="cash",le="100.0"} 1
branchwatch_wait_seconds_bucket{region="north",branch="b1",service="cash",le="200.0"} 1
branchwatch_wait_seconds_bucket{region="north",branch="b1",service="cash",le="300.0"} 2
branchwatch_wait_seconds_bucket{region="north",branch="b1",service="cash",le="+Inf"} 2
branchwatch_wait_seconds_sum{region="north",branch="b1",service="cash"} 320.0
branchwatch_wait_seconds_count{region="north",branch="b1",service="cash"} 2
# HELP branchwatch_service_seconds Service time from start to end, in seconds.
# TYPE branchwatch_service_seconds histogram
branchwatch_service_seconds_bucket{region="north",branch="b1",service="cash",le="30.0"} 1
branchwatch_service_seconds_bucket{region="north",branch="b1",service="cash",le="+Inf"} 1
branchwatch_service_seconds_sum{region="north",branch="b1",service="cash"} 20.0
branchwatch_service_seconds_count{region="north",branch="b1",service="cash"} 1
# HELP branchwatch_counters Counters per state.
# TYPE branchwatch_counters gauge
branchwatch_counters{region="north",branch="b1",state="open"} 1
branchwatch_counters{region="north",branch="b1",state="paused"} 0
branchwatch_counters{region="north",branch="b1",state="closed"} 0
# HELP branchwatch_position_staffed Staff checked in at the lobby post (0 = empty).
# TYPE branchwatch_position_staffed gauge
branchwatch_position_staffed{region="north",branch="b1",position="1"} 1
branchwatch_position_staffed{region="north",branch="b1",position="2"} 0
# HELP branchwatch_position_changed_timestamp_seconds When (event time, Unix seconds) the post was last staffed or vacated, or the branch opened while it was empty.
# TYPE branchwatch_position_changed_timestamp_seconds gauge
branchwatch_position_changed_timestamp_seconds{region="north",branch="b1",position="1"} 1001.0
branchwatch_position_changed_timestamp_seconds{region="north",branch="b1",position="2"} 1000.0
# HELP branchwatch_evaluations_requested_total Ratings requested on the counter's evaluator pad.
# TYPE branchwatch_evaluations_requested_total counter
branchwatch_evaluations_requested_total{region="north",branch="b1",counter="c1"} 1
# HELP branchwatch_evaluations_total Ratings submitted on the counter's evaluator pad.
# TYPE branchwatch_evaluations_total counter
branchwatch_evaluations_total{region="north",branch="b1",counter="c1",rating="very_satisfied"} 1
branchwatch_evaluations_total{region="north",branch="b1",counter="c1",rating="satisfied"} 0
branchwatch_evaluations_total{region="north",branch="b1",counter="c1",rating="neutral"} 0
branchwatch_evaluations_total{region="north",branch="b1",counter="c1",rating="unsatisfied"} 0
# HELP branchwatch_teller_evaluations_total Ratings submitted for the teller (named by the pad, else the teller who served the rated ticket, else the counter's).
# TYPE branchwatch_teller_evaluations_total counter
branchwatch_teller_evaluations_total{region="north",branch="b1",teller="t1",rating="very_satisfied"} 1
branchwatch_teller_evaluations_total{region="north",branch="b1",teller="t1",rating="satisfied"} 0
branchwatch_teller_evaluations_total{region="north",branch="b1",teller="t1",rating="neutral"} 0
branchwatch_teller_evaluations_total{region="north",branch="b1",teller="t1",rating="unsatisfied"} 0
# HELP branchwatch_teller_served_total Transactions the teller completed: service.ended of services the teller started.
# TYPE branchwatch_teller_served_total counter
branchwatch_teller_served_total{region="north",branch="b1",teller="t1"} 1
# HELP branchwatch_intercom_ack_seconds From an intercom call to the called post's first acknowledgement, in seconds (to_position="all": an all-call, answered by any post).
# TYPE branchwatch_intercom_ack_seconds histogram
branchwatch_intercom_ack_seconds_bucket{region="north",branch="b1",from_position="1",to_position="2",le="30.0"} 1
branchwatch_intercom_ack_seconds_bucket{region="north",branch="b1",from_position="1",to_position="2",le="120.0"} 1
branchwatch_intercom_ack_seconds_bucket{region="north",branch="b1",from_position="1",to_position="2",le="+Inf"} 1
branchwatch_intercom_ack_seconds_sum{region="north",branch="b1",from_position="1",to_position="2"} 30.0
branchwatch_intercom_ack_seconds_count{region="north",branch="b1",from_position="1",to_position="2"} 1
# HELP branchwatch_agent_up 1 while the edge agent is online: its latest message was events or an online status; 0 after its offline status (the MQTT will, or a clean stop).
# TYPE branchwatch_agent_up gauge
branchwatch_agent_up{region="north",branch="b1",agent="a1"} 1
# HELP branchwatch_agent_spool_depth Events in the agent's spool not yet acknowledged by the broker.
# TYPE branchwatch_agent_spool_depth gauge
branchwatch_agent_spool_depth{region="north",branch="b1",agent="a1"} 0
# HELP branchwatch_agent_last_seen_timestamp_seconds When (Unix seconds, the collector's clock) the collector last received a message of the agent.
# TYPE branchwatch_agent_last_seen_timestamp_seconds gauge
branchwatch_agent_last_seen_timestamp_seconds{region="north",branch="b1",agent="a1"} 1300.0
# HELP branchwatch_agent_info 1 per agent, labelled with the software version its latest status reported.
# TYPE branchwatch_agent_info gauge
branchwatch_agent_info{region="north",branch="b1",agent="a1",version="1.2.3"} 1
# HELP branchwatch_device_up 1 while the agent is online and reports the device's link up.
# TYPE branchwatch_device_up gauge
branchwatch_device_up{region="north",branch="b1",agent="a1",device="q1",kind="queue"} 1
# HELP branchwatch_device_fault 1 while the device reports the fault, 0 once it recovered.
# TYPE branchwatch_device_fault gauge
branchwatch_device_fault{region="north",branch="b1",agent="a1",device="q1",fault="paper_low"} 1
# HELP branchwatch_agent_bad_frames_total Frames from the device that the agent could not read, by reason, since the agent started (from its status).
# TYPE branchwatch_agent_bad_frames_total counter
branchwatch_agent_bad_frames_total{region="north",branch="b1",agent="a1",device="q1",reason="bad_args"} 2
# HELP branchwatch_branch_rebuilding 1 while the branch is rebuilt from its agents' replays (the collector had no seq of an agent): its figures are not complete yet; 0 otherwise.
# TYPE branchwatch_branch_rebuilding gauge
branchwatch_branch_rebuilding{region="north",branch="b1"} 0
# HELP branchwatch_agent_events_missing Seqs of the agent skipped by a gap and not received yet: asked for again, until they arrive or the agent shows it no longer holds them.
# TYPE branchwatch_agent_events_missing gauge
branchwatch_agent_events_missing{region="north",branch="b1",agent="a1"} 0
# HELP branchwatch_agent_events_lost_total Missing seqs of the agent given up for good: its replay skipped them (past its retention, or dropped from a full spool), or beyond what the collector remembers.
# TYPE branchwatch_agent_events_lost_total counter
branchwatch_agent_events_lost_total{region="north",branch="b1",agent="a1"} 0
# HELP branchwatch_agent_events_refused_total Events the agent could not store in its spool (its disk full or failing) and so never sent, since its spool was made (from its status).
# TYPE branchwatch_agent_events_refused_total counter
branchwatch_agent_events_refused_total{region="north",branch="b1",agent="a1"} 0
# HELP branchwatch_notices_total Floor notices by kind (post_empty, unsatisfied, queue_long) and outcome: sent (notify commands), acked, escalated (a step unacknowledged in time), unanswered (chain exhausted), resolved (the cause ended).
# TYPE branchwatch_notices_total counter
# HELP branchwatch_notice_open Floor notice episodes the branch has been told of and that have not ended.
# TYPE branchwatch_notice_open gauge
# HELP branchwatch_notice_unanswered_timestamp_seconds Since when (Unix seconds) a notice chain of this kind is exhausted with nobody acknowledging (the oldest such); absent otherwise.
# TYPE branchwatch_notice_unanswered_timestamp_seconds gauge
# HELP branchwatch_notice_ack_seconds From a floor notice sent to its acknowledgement on an intercom, in seconds.
# TYPE branchwatch_notice_ack_seconds histogram
"""


def test_exact_text_of_a_scripted_scenario() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store)
    assert store.render() == EXPECTED


def test_prometheus_parses_it_and_histograms_add_up() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store)
    families = {f.name: f for f in text_string_to_metric_families(store.render())}
    assert families["branchwatch_wait_seconds"].type == "histogram"
    assert families["branchwatch_tickets_issued"].type == "counter"  # the parser drops _total
    samples = {
        s.name + ("/" + s.labels["le"] if "le" in s.labels else ""): s.value
        for s in families["branchwatch_wait_seconds"].samples
    }
    assert (
        samples["branchwatch_wait_seconds_bucket/+Inf"]
        == samples["branchwatch_wait_seconds_count"]
        == 2
    )
    assert samples["branchwatch_wait_seconds_sum"] == 90 + 230


def test_families_appear_once_in_catalog_order_grouped_across_branches() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store, "south", "b2")
    scenario(store, "north", "b1")
    scenario(store, "north", "b10")
    lines = store.render().splitlines()
    assert [line.split()[2] for line in lines if line.startswith("# TYPE")] == FAMILY_ORDER
    assert sum(line.startswith("# HELP") for line in lines) == len(FAMILY_ORDER)
    # The order of branches within a family is free (it follows the cache's blocks).
    opens = sorted(line for line in lines if line.startswith("branchwatch_branch_open{"))
    assert opens == [
        'branchwatch_branch_open{region="north",branch="b1"} 1',
        'branchwatch_branch_open{region="north",branch="b10"} 1',
        'branchwatch_branch_open{region="south",branch="b2"} 1',
    ]
    # every family's samples directly follow its own header
    family = ""
    for line in lines:
        if line.startswith("# TYPE"):
            family = line.split()[2]
        elif not line.startswith("#"):
            assert line.startswith(family), (family, line)


def branch_text(store: Store, key: tuple[str, str], family: str) -> bytes | None:
    """One branch's text of ``family``, cut out of its block's member."""
    block = store.exposition.block(key)
    if block is None:
        return None
    held, f, families = block.text, FAMILY_ORDER.index(family), len(FAMILY_ORDER)
    row = held.rows.index(key)
    start = sum(held.lengths[i * families + f] for i in range(row))
    whole = b"".join(texts([held.members[f]]))
    return whole[start : start + held.lengths[row * families + f]]


def test_only_dirty_branches_are_rendered_again() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store, "north", "b1")
    scenario(store, "north", "b2")
    first = store.render_bytes()
    chunks = store.render_chunks()
    b1, b2 = (store.exposition.block(("north", "b1")), store.exposition.block(("north", "b2")))
    assert b1 is not None and b2 is not None and b1 is not b2  # crc32 % 64: 7 and 61
    b1_text, b2_text = b1.text, b2.text
    assert store.render_chunks() is chunks  # nothing changed: the cached chunks themselves
    store.apply_events("north", "b2", "a1", [E(ev.BranchClosed, 17, 1400.0)], received=1400.0)
    second = store.render_bytes()
    assert b1.text is b1_text  # untouched: the same objects
    assert b2.text is not b2_text
    assert (
        branch_text(store, ("north", "b2"), metrics.BRANCH_OPEN.name)
        == b'branchwatch_branch_open{region="north",branch="b2"} 0\n'
    )
    lost = branch_text(store, ("north", "b2"), metrics.TICKETS_LOST.name)
    assert lost is not None and lost.count(b'reason="closed"} 1') == 1  # A3 was still waiting
    assert second != first
    assert [line for line in second.splitlines() if b'branch="b1"' in line] == [
        line for line in first.splitlines() if b'branch="b1"' in line
    ]


def test_a_batch_of_duplicates_leaves_the_cache_alone() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store)
    first = store.render_chunks()
    block = store.exposition.block(("north", "b1"))
    assert block is not None
    held = block.text
    result = store.apply_events(
        "north", "b1", "a1", [E(ev.BranchClosed, 3, 5000.0)], received=5000.0
    )
    assert result.duplicate == 1
    assert store.render_chunks() is first
    assert block.text is held


def test_a_dropped_branch_disappears() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    scenario(store, "north", "b1")
    scenario(store, "north", "b2")
    store.render()
    store.apply_events("north", "b2", "a1", [E(ev.BranchClosed, 14, 1400.0)], received=2000.0)
    assert store.expire_stale(now=2500.0, max_age=600.0) == [("north", "b1")]
    text = store.render()
    assert 'branch="b1"' not in text and 'branch="b2"' in text
    assert store.exposition.block(("north", "b1")) is None


def test_no_branches_still_declares_every_family() -> None:
    text = Store(CONFIG, thresholds=LIMITS).render()
    assert [
        line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")
    ] == FAMILY_ORDER
    assert all(line.startswith("#") for line in text.splitlines())


def test_bucket_bounds_are_formatted_like_prometheus_client() -> None:
    config = FloorConfig(wait_buckets=(0.5, 2700.0, 1_000_000.0), service_buckets=(12345678.0,))
    store = Store(config)
    store.apply_events("r", "b", "a", [E(ev.BranchOpened, 1, 1.0)], received=1.0)
    text = store.render()
    les = [
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if 'service="cash",le=' in line
    ]
    assert les == [
        "0.5",
        "900.0",
        "1200.0",
        "1800.0",
        "2700.0",
        "1e+06",
        "+Inf",
        "1.2345678e+07",
        "+Inf",
    ]


def test_oldest_wait_is_absent_while_the_queue_is_empty() -> None:
    store = Store(CONFIG, thresholds=LIMITS)
    store.apply_events(
        "r", "b", "a", [E(ev.TicketIssued, 1, 5.0, ticket="A1", service="cash")], received=5.0
    )
    assert (
        'branchwatch_queue_oldest_issued_timestamp_seconds{region="r",branch="b",service="cash"} 5.0\n'
        in store.render()
    )
    store.apply_events("r", "b", "a", [E(ev.TicketWalkout, 2, 9.0, ticket="A1")], received=9.0)
    assert "branchwatch_queue_oldest_issued_timestamp_seconds{" not in store.render()
