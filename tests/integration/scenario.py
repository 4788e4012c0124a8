"""A scripted branch day with hand-computed expected metrics.

Every number in EXPECTED follows from the events below; the comments show
the arithmetic, so a reader can check the collector against the domain.
"""

from __future__ import annotations

import time
from typing import Any, Final

from branchwatch.contract import events as ev

REGION: Final = "north"
BRANCH: Final = "br-0001"
AGENT: Final = "edge-1"
T0: Final = float(int(time.time()) - 3000)

# (ts offset, event type, fields). seq is the 1-based index.
SCRIPT: Final[list[tuple[float, type[ev.Event], dict[str, Any]]]] = [
    (0, ev.BranchOpened, {}),
    (1, ev.CounterOpened, {"counter": "c1", "kind": "high", "teller": "t1"}),
    (2, ev.CounterOpened, {"counter": "c2", "kind": "low", "teller": "t2"}),
    (5, ev.PositionStaffed, {"position": 1, "staff": "s1"}),
    (6, ev.PositionStaffed, {"position": 5, "staff": "t1"}),
    (7, ev.PositionStaffed, {"position": 5, "staff": "t2"}),
    (10, ev.TicketIssued, {"ticket": "A001", "service": "cash"}),
    (20, ev.TicketIssued, {"ticket": "B001", "service": "non_cash"}),
    (30, ev.TicketIssued, {"ticket": "A002", "service": "cash"}),
    (40, ev.TicketIssued, {"ticket": "A003", "service": "cash"}),
    (100, ev.TicketCalled, {"ticket": "A001", "counter": "c1"}),  # cash wait 90
    (110, ev.ServiceStarted, {"ticket": "A001", "counter": "c1", "teller": "t1"}),
    (200, ev.TicketCalled, {"ticket": "B001", "counter": "c2"}),  # non_cash wait 180
    (230, ev.TicketTransferred, {"ticket": "B001", "service": "cash"}),  # waits again
    (290, ev.ServiceEnded, {"ticket": "A001", "counter": "c1"}),  # cash service 180
    (291, ev.EvaluationRequested, {"counter": "c1", "ticket": "A001"}),
    (295, ev.EvaluationSubmitted, {"counter": "c1", "rating": "very_satisfied"}),
    (330, ev.TicketCalled, {"ticket": "A002", "counter": "c1"}),  # cash wait 300
    (350, ev.TicketNoShow, {"ticket": "A002"}),
    (500, ev.TicketWalkout, {"ticket": "A003"}),
    (530, ev.TicketCalled, {"ticket": "B001", "counter": "c1"}),  # cash wait 530-230=300
    (540, ev.ServiceStarted, {"ticket": "B001", "counter": "c1", "teller": "t1"}),
    (600, ev.ServiceEnded, {"ticket": "B001", "counter": "c1"}),  # cash service 60
    (601, ev.EvaluationRequested, {"counter": "c1"}),
    (605, ev.EvaluationSubmitted, {"counter": "c1", "rating": "unsatisfied"}),
    (606, ev.EvaluationRequested, {"counter": "c2"}),
    (616, ev.EvaluationExpired, {"counter": "c2"}),
    (700, ev.TicketIssued, {"ticket": "C001", "service": "vip", "vip": True}),
    (710, ev.TicketIssued, {"ticket": "A004", "service": "cash"}),
    (720, ev.PositionVacated, {"position": 1, "staff": "s1"}),
    (730, ev.CounterPaused, {"counter": "c2", "reason": "lunch"}),
    (740, ev.DeviceFault, {"fault": "paper_low"}),
    (750, ev.TicketIssued, {"ticket": "D001", "service": "corporate"}),
    (900, ev.BranchClosed, {}),
]
OPEN_PART: Final = 33  # events before branch.closed


def events(first: int = 1, last: int = len(SCRIPT)) -> list[ev.Event]:
    """Events with seq ``first``..``last`` (1-based, inclusive)."""
    out: list[ev.Event] = []
    for seq in range(first, last + 1):
        offset, kind, fields = SCRIPT[seq - 1]
        out.append(kind(v=1, seq=seq, ts=T0 + offset, device="queue-1", **fields))
    return out


def L(**labels: str) -> dict[str, str]:
    return {"region": REGION, "branch": BRANCH, **labels}


# Before branch.closed (after OPEN_PART events): who is waiting.
EXPECTED_OPEN: Final[list[tuple[str, dict[str, str], float | None]]] = [
    ("branchwatch_branch_open", L(), 1),
    ("branchwatch_queue_waiting", L(service="cash"), 1),  # A004
    ("branchwatch_queue_waiting", L(service="vip"), 1),  # C001
    ("branchwatch_queue_waiting", L(service="corporate"), 1),  # D001
    ("branchwatch_queue_waiting", L(service="non_cash"), 0),
    ("branchwatch_queue_oldest_issued_timestamp_seconds", L(service="cash"), T0 + 710),
    ("branchwatch_queue_oldest_issued_timestamp_seconds", L(service="vip"), T0 + 700),
    ("branchwatch_queue_oldest_issued_timestamp_seconds", L(service="non_cash"), None),
    ("branchwatch_position_staffed", L(position="1"), 0),
    ("branchwatch_position_changed_timestamp_seconds", L(position="1"), T0 + 720),
]

# After the whole script.
EXPECTED: Final[list[tuple[str, dict[str, str], float | None]]] = [
    ("branchwatch_branch_open", L(), 0),
    ("branchwatch_queue_waiting", L(service="cash"), 0),
    ("branchwatch_queue_oldest_issued_timestamp_seconds", L(service="cash"), None),
    ("branchwatch_tickets_issued_total", L(service="cash"), 4),  # A001-A004
    ("branchwatch_tickets_issued_total", L(service="non_cash"), 1),  # B001 (not again on transfer)
    ("branchwatch_tickets_issued_total", L(service="vip"), 1),
    ("branchwatch_tickets_issued_total", L(service="corporate"), 1),
    ("branchwatch_tickets_served_total", L(service="cash"), 2),  # A001, B001 after transfer
    ("branchwatch_tickets_served_total", L(service="non_cash"), 0),
    ("branchwatch_tickets_lost_total", L(service="cash", reason="no_show"), 1),  # A002
    ("branchwatch_tickets_lost_total", L(service="cash", reason="walkout"), 1),  # A003
    ("branchwatch_tickets_lost_total", L(service="cash", reason="closed"), 1),  # A004
    ("branchwatch_tickets_lost_total", L(service="vip", reason="closed"), 1),  # C001
    ("branchwatch_tickets_lost_total", L(service="corporate", reason="closed"), 1),  # D001
    ("branchwatch_tickets_lost_total", L(service="non_cash", reason="closed"), 0),
    # cash waits: 90, 300, 300
    ("branchwatch_wait_seconds_count", L(service="cash"), 3),
    ("branchwatch_wait_seconds_sum", L(service="cash"), 690),
    ("branchwatch_wait_seconds_bucket", L(service="cash", le="60.0"), 0),
    ("branchwatch_wait_seconds_bucket", L(service="cash", le="120.0"), 1),
    ("branchwatch_wait_seconds_bucket", L(service="cash", le="300.0"), 3),
    ("branchwatch_wait_seconds_bucket", L(service="cash", le="900.0"), 3),
    ("branchwatch_wait_seconds_bucket", L(service="cash", le="+Inf"), 3),
    # non_cash wait: 180 (B001's first segment)
    ("branchwatch_wait_seconds_count", L(service="non_cash"), 1),
    ("branchwatch_wait_seconds_sum", L(service="non_cash"), 180),
    ("branchwatch_wait_seconds_bucket", L(service="non_cash", le="120.0"), 0),
    ("branchwatch_wait_seconds_bucket", L(service="non_cash", le="300.0"), 1),
    ("branchwatch_wait_seconds_count", L(service="vip"), 0),
    # cash service: 180, 60
    ("branchwatch_service_seconds_count", L(service="cash"), 2),
    ("branchwatch_service_seconds_sum", L(service="cash"), 240),
    ("branchwatch_service_seconds_bucket", L(service="cash", le="30.0"), 0),
    ("branchwatch_service_seconds_bucket", L(service="cash", le="60.0"), 1),
    ("branchwatch_service_seconds_bucket", L(service="cash", le="300.0"), 2),
    ("branchwatch_counters", L(state="open"), 1),  # c1
    ("branchwatch_counters", L(state="paused"), 1),  # c2
    ("branchwatch_counters", L(state="closed"), 0),
    ("branchwatch_position_staffed", L(position="1"), 0),
    ("branchwatch_position_staffed", L(position="5"), 2),
    ("branchwatch_position_staffed", L(position="2"), 0),
    ("branchwatch_position_staffed", L(position="7"), 0),
    ("branchwatch_position_changed_timestamp_seconds", L(position="1"), T0 + 720),
    ("branchwatch_position_changed_timestamp_seconds", L(position="5"), T0 + 7),
    ("branchwatch_position_changed_timestamp_seconds", L(position="2"), T0),
    ("branchwatch_evaluations_requested_total", L(counter="c1"), 2),
    ("branchwatch_evaluations_requested_total", L(counter="c2"), 1),
    ("branchwatch_evaluations_total", L(counter="c1", rating="very_satisfied"), 1),
    ("branchwatch_evaluations_total", L(counter="c1", rating="unsatisfied"), 1),
    ("branchwatch_evaluations_total", L(counter="c1", rating="satisfied"), 0),
    ("branchwatch_evaluations_total", L(counter="c2", rating="neutral"), 0),
    ("branchwatch_device_fault", L(agent=AGENT, device="queue-1", fault="paper_low"), 1),
]
