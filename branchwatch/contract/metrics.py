"""The metric catalog: every family the collector exports, in one place.

Metric names are a public interface (alert rules, boards and people's own
queries use them): a name listed here is never renamed. The exposition renders
its ``# HELP``/``# TYPE`` headers from this catalog, the collector's
self-metrics are registered from it, and the alert rules and boards build their
PromQL from these constants (``metrics.QUEUE_WAITING.name``) instead of
spelling names out. Every floor family carries ``region`` and ``branch``
(:data:`BRANCH_LABELS`); ``labels`` lists the ones it adds.

Adding a family is one change here: define the constant and add it to
:data:`FLOOR` (in exposition order) or :data:`COLLECTOR`. The catalog test
(``tests/unit/test_metric_catalog.py``) then fails until the collector renders
it, with exactly these labels, type and help: for a floor family add its
renderer to ``collector/exposition/floor.py`` (or ``agents.py``); register a collector
family with ``collector.selfmetrics.counter`` (or ``gauge``/``histogram``) where it is
counted.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec
from prometheus_client.utils import floatToGoString

MetricType = Literal["gauge", "counter", "histogram"]
Scope = Literal["branch", "collector"]

BRANCH_LABELS: Final = ("region", "branch")


class MetricFamily(msgspec.Struct, frozen=True, kw_only=True):
    """One metric family as Prometheus sees it.

    ``name`` is what a query selects: counters end in ``_total``; a histogram's
    series are ``bucket``, ``sum`` and ``count``.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()  # beyond region/branch (and a histogram's le)
    scope: Scope = "branch"  # "collector": the collector's own, no branch labels

    @property
    def all_labels(self) -> tuple[str, ...]:
        """Every label of a series, in the order the collector writes them (``le`` aside)."""
        return (*BRANCH_LABELS, *self.labels) if self.scope == "branch" else self.labels

    @property
    def header(self) -> str:
        """The family's ``# HELP`` and ``# TYPE`` lines of the text exposition."""
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} {self.type}\n"

    @property
    def bucket(self) -> str:
        return self._series("bucket")

    @property
    def sum(self) -> str:
        return self._series("sum")

    @property
    def count(self) -> str:
        return self._series("count")

    def _series(self, suffix: str) -> str:
        if self.type != "histogram":
            raise ValueError(f"{self.name} is a {self.type}, it has no _{suffix} series")
        return f"{self.name}_{suffix}"


def bucket_label(bound: float) -> str:
    """A histogram bound as the ``le`` label value the collector exports (``900.0``, ``1e+06``).

    prometheus_client's own formatting, so the floor histograms (rendered by
    hand) and the self-metrics agree, and queries can select ``le`` exactly.
    """
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


# -- floor metrics (every series carries region and branch) --------------------------------

BRANCH_OPEN: Final = MetricFamily(
    name="branchwatch_branch_open", type="gauge", help="1 while the branch is open."
)
BRANCH_OPENED: Final = MetricFamily(
    name="branchwatch_branch_opened_timestamp_seconds",
    type="gauge",
    help="When (event time, Unix seconds) the branch's business day began: its newest "
    "branch.opened; absent until one is seen.",
)
QUEUE_WAITING: Final = MetricFamily(
    name="branchwatch_queue_waiting",
    type="gauge",
    help="Tickets waiting to be called.",
    labels=("service",),
)
QUEUE_OLDEST_ISSUED: Final = MetricFamily(
    name="branchwatch_queue_oldest_issued_timestamp_seconds",
    type="gauge",
    help="Since when (event time, Unix seconds) the longest-waiting ticket waits; "
    "absent while the queue is empty.",
    labels=("service",),
)
TICKETS_ISSUED: Final = MetricFamily(
    name="branchwatch_tickets_issued_total",
    type="counter",
    help="Tickets issued.",
    labels=("service",),
)
TICKETS_SERVED: Final = MetricFamily(
    name="branchwatch_tickets_served_total",
    type="counter",
    help="Tickets whose service started.",
    labels=("service",),
)
TICKETS_LOST: Final = MetricFamily(
    name="branchwatch_tickets_lost_total",
    type="counter",
    help="Tickets that ended without service: no_show, walkout, or still waiting at closing.",
    labels=("service", "reason"),
)
TICKETS_TRANSFERRED: Final = MetricFamily(
    name="branchwatch_tickets_transferred_total",
    type="counter",
    help="Tickets referred from one service's queue to another's.",
    labels=("from_service", "to_service"),
)
WAIT_SECONDS: Final = MetricFamily(
    name="branchwatch_wait_seconds",
    type="histogram",
    help="Wait from issue (or transfer) until called, in seconds.",
    labels=("service",),
)
SERVICE_SECONDS: Final = MetricFamily(
    name="branchwatch_service_seconds",
    type="histogram",
    help="Service time from start to end, in seconds.",
    labels=("service",),
)
COUNTERS: Final = MetricFamily(
    name="branchwatch_counters", type="gauge", help="Counters per state.", labels=("state",)
)
POSITION_STAFFED: Final = MetricFamily(
    name="branchwatch_position_staffed",
    type="gauge",
    help="Staff checked in at the lobby post (0 = empty).",
    labels=("position",),
)
POSITION_CHANGED: Final = MetricFamily(
    name="branchwatch_position_changed_timestamp_seconds",
    type="gauge",
    help="When (event time, Unix seconds) the post was last staffed or vacated, "
    "or the branch opened while it was empty.",
    labels=("position",),
)
EVALUATIONS_REQUESTED: Final = MetricFamily(
    name="branchwatch_evaluations_requested_total",
    type="counter",
    help="Ratings requested on the counter's evaluator pad.",
    labels=("counter",),
)
EVALUATIONS: Final = MetricFamily(
    name="branchwatch_evaluations_total",
    type="counter",
    help="Ratings submitted on the counter's evaluator pad.",
    labels=("counter", "rating"),
)
TELLER_EVALUATIONS: Final = MetricFamily(
    name="branchwatch_teller_evaluations_total",
    type="counter",
    help="Ratings submitted for the teller (named by the pad, else the teller who served "
    "the rated ticket, else the counter's).",
    labels=("teller", "rating"),
)
TELLER_SERVED: Final = MetricFamily(
    name="branchwatch_teller_served_total",
    type="counter",
    help="Transactions the teller completed: service.ended of services the teller started.",
    labels=("teller",),
)
AGENT_UP: Final = MetricFamily(
    name="branchwatch_agent_up",
    type="gauge",
    help="1 while the edge agent is online: its latest message was events or an online "
    "status; 0 after its offline status (the MQTT will, or a clean stop).",
    labels=("agent",),
)
AGENT_INFO: Final = MetricFamily(
    name="branchwatch_agent_info",
    type="gauge",
    help="1 per agent, labelled with the software version its latest status reported.",
    labels=("agent", "version"),
)
AGENT_SPOOL_DEPTH: Final = MetricFamily(
    name="branchwatch_agent_spool_depth",
    type="gauge",
    help="Events in the agent's spool not yet acknowledged by the broker.",
    labels=("agent",),
)
AGENT_LAST_SEEN: Final = MetricFamily(
    name="branchwatch_agent_last_seen_timestamp_seconds",
    type="gauge",
    help="When (Unix seconds, the collector's clock) the collector last received a message "
    "of the agent.",
    labels=("agent",),
)
DEVICE_UP: Final = MetricFamily(
    name="branchwatch_device_up",
    type="gauge",
    help="1 while the agent is online and reports the device's link up.",
    labels=("agent", "device", "kind"),
)
DEVICE_FAULT: Final = MetricFamily(
    name="branchwatch_device_fault",
    type="gauge",
    help="1 while the device reports the fault, 0 once it recovered.",
    labels=("agent", "device", "fault"),
)
AGENT_BAD_FRAMES: Final = MetricFamily(
    name="branchwatch_agent_bad_frames_total",
    type="counter",
    help="Frames from the device that the agent could not read, by reason, since the agent "
    "started (from its status).",
    labels=("agent", "device", "reason"),
)
INTERCOM_ACK_SECONDS: Final = MetricFamily(
    name="branchwatch_intercom_ack_seconds",
    type="histogram",
    help="From an intercom call to the called post's first acknowledgement, in seconds "
    '(to_position="all": an all-call, answered by any post).',
    labels=("from_position", "to_position"),
)
BRANCH_REBUILDING: Final = MetricFamily(
    name="branchwatch_branch_rebuilding",
    type="gauge",
    help="1 while the branch is rebuilt from its agents' replays (the collector had no seq "
    "of an agent): its figures are not complete yet; 0 otherwise.",
)
AGENT_EVENTS_MISSING: Final = MetricFamily(
    name="branchwatch_agent_events_missing",
    type="gauge",
    help="Seqs of the agent skipped by a gap and not received yet: asked for again, until "
    "they arrive or the agent shows it no longer holds them.",
    labels=("agent",),
)
AGENT_EVENTS_LOST: Final = MetricFamily(
    name="branchwatch_agent_events_lost_total",
    type="counter",
    help="Missing seqs of the agent given up for good: its replay skipped them (past its "
    "retention, or dropped from a full spool), or beyond what the collector remembers.",
    labels=("agent",),
)
AGENT_EVENTS_REFUSED: Final = MetricFamily(
    name="branchwatch_agent_events_refused_total",
    type="counter",
    help="Events the agent could not store in its spool (its disk full or failing) and so "
    "never sent, since its spool was made (from its status).",
    labels=("agent",),
)
NOTICES: Final = MetricFamily(
    name="branchwatch_notices_total",
    type="counter",
    help="Floor notices by kind (post_empty, unsatisfied, queue_long) and outcome: sent "
    "(notify commands), acked, escalated (a step unacknowledged in time), unanswered "
    "(chain exhausted), resolved (the cause ended).",
    labels=("kind", "outcome"),
)
NOTICE_OPEN: Final = MetricFamily(
    name="branchwatch_notice_open",
    type="gauge",
    help="Floor notice episodes the branch has been told of and that have not ended.",
    labels=("kind",),
)
NOTICE_UNANSWERED: Final = MetricFamily(
    name="branchwatch_notice_unanswered_timestamp_seconds",
    type="gauge",
    help="Since when (Unix seconds) a notice chain of this kind is exhausted with nobody "
    "acknowledging (the oldest such); absent otherwise.",
    labels=("kind",),
)
NOTICE_ACK_SECONDS: Final = MetricFamily(
    name="branchwatch_notice_ack_seconds",
    type="histogram",
    help="From a floor notice sent to its acknowledgement on an intercom, in seconds.",
    labels=("kind",),
)

# -- the collector's own metrics (no branch labels) ----------------------------------------

COLLECTOR_MESSAGES: Final = MetricFamily(
    name="branchwatch_collector_messages_total",
    type="counter",
    help="MQTT messages received, by result (accepted, duplicate, rejected).",
    labels=("result",),
    scope="collector",
)
COLLECTOR_REJECTED: Final = MetricFamily(
    name="branchwatch_collector_rejected_total",
    type="counter",
    help="Rejected messages (and events refused by the floor model), by reason.",
    labels=("reason",),
    scope="collector",
)
COLLECTOR_EVENTS_MISSING: Final = MetricFamily(
    name="branchwatch_collector_events_missing_total",
    type="counter",
    help="Events skipped in an agent's seq (gaps); a replay is requested for them.",
    scope="collector",
)
COLLECTOR_MQTT_CONNECTED: Final = MetricFamily(
    name="branchwatch_collector_mqtt_connected",
    type="gauge",
    help="1 while the collector is connected and subscribed to the broker.",
    scope="collector",
)
COLLECTOR_INGEST_LAG: Final = MetricFamily(
    name="branchwatch_collector_ingest_lag_seconds",
    type="histogram",
    help="Receive time minus event time, for live (not replayed) events.",
    scope="collector",
)
COLLECTOR_ANNOTATIONS: Final = MetricFamily(
    name="branchwatch_collector_annotations_total",
    type="counter",
    help="Grafana annotations of floor incidents, by result (posted, failed, dropped).",
    labels=("result",),
    scope="collector",
)

COLLECTOR_NOTICES_UNPUBLISHED: Final = MetricFamily(
    name="branchwatch_collector_notices_unpublished_total",
    type="counter",
    help="Floor notices the MQTT client refused to queue: counted as sent, never delivered.",
    scope="collector",
)
COLLECTOR_NOTICE_ACKS_IGNORED: Final = MetricFamily(
    name="branchwatch_collector_notice_acks_ignored_total",
    type="counter",
    help="Intercom acks that acknowledged no floor notice, by reason (unknown_notice, "
    "wrong_post, already_acked, no_notice), summed over the branches held; the API's "
    "branch view counts them per branch.",
    labels=("reason",),
    scope="collector",
)
COLLECTOR_SNAPSHOT_FAILURES: Final = MetricFamily(
    name="branchwatch_collector_snapshot_failures_total",
    type="counter",
    help="Snapshots of the collector's state that could not be written (state dir full, "
    "gone or failing); the log says why.",
    scope="collector",
)
COLLECTOR_SNAPSHOT_LAST_SUCCESS: Final = MetricFamily(
    name="branchwatch_collector_snapshot_last_success_timestamp_seconds",
    type="gauge",
    help="When (Unix seconds) the collector last wrote its snapshot; at start, when the "
    "snapshot it found was written; 0 before any.",
    scope="collector",
)
COLLECTOR_HTTP_REFUSED: Final = MetricFamily(
    name="branchwatch_collector_http_connections_refused_total",
    type="counter",
    help="HTTP connections the collector closed or answered with an error before serving "
    "them, by reason (cap_evicted, cap_refused, header_timeout, too_large, bad_request, "
    "tls_failed, write_timeout).",
    labels=("reason",),
    scope="collector",
)
COLLECTOR_HTTP_CONNECTIONS: Final = MetricFamily(
    name="branchwatch_collector_http_connections",
    type="gauge",
    help="HTTP connections open now (reading a request, being answered, or kept alive).",
    scope="collector",
)

# The floor families in the order the exposition writes them.
FLOOR: Final = (
    BRANCH_OPEN,
    BRANCH_OPENED,
    QUEUE_WAITING,
    QUEUE_OLDEST_ISSUED,
    TICKETS_ISSUED,
    TICKETS_SERVED,
    TICKETS_LOST,
    TICKETS_TRANSFERRED,
    WAIT_SECONDS,
    SERVICE_SECONDS,
    COUNTERS,
    POSITION_STAFFED,
    POSITION_CHANGED,
    EVALUATIONS_REQUESTED,
    EVALUATIONS,
    TELLER_EVALUATIONS,
    TELLER_SERVED,
    INTERCOM_ACK_SECONDS,
    AGENT_UP,
    AGENT_SPOOL_DEPTH,
    AGENT_LAST_SEEN,
    AGENT_INFO,
    DEVICE_UP,
    DEVICE_FAULT,
    AGENT_BAD_FRAMES,
    BRANCH_REBUILDING,
    AGENT_EVENTS_MISSING,
    AGENT_EVENTS_LOST,
    AGENT_EVENTS_REFUSED,
    NOTICES,
    NOTICE_OPEN,
    NOTICE_UNANSWERED,
    NOTICE_ACK_SECONDS,
)
# Registered by the collector in its self-metrics registry (annotations: when Grafana is on).
COLLECTOR: Final = (
    COLLECTOR_MESSAGES,
    COLLECTOR_REJECTED,
    COLLECTOR_EVENTS_MISSING,
    COLLECTOR_MQTT_CONNECTED,
    COLLECTOR_INGEST_LAG,
    COLLECTOR_ANNOTATIONS,
    COLLECTOR_NOTICES_UNPUBLISHED,
    COLLECTOR_NOTICE_ACKS_IGNORED,
    COLLECTOR_SNAPSHOT_FAILURES,
    COLLECTOR_SNAPSHOT_LAST_SUCCESS,
    COLLECTOR_HTTP_REFUSED,
    COLLECTOR_HTTP_CONNECTIONS,
)
CATALOG: Final = FLOOR + COLLECTOR
BY_NAME: Final = {family.name: family for family in CATALOG}
