"""The collector's own metrics (DESIGN §5), in an injected registry.

Floor metrics are rendered by the store from cached per-branch text; these
few are ordinary prometheus_client metrics, appended after them.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "branchwatch_collector_messages",
            "MQTT messages received, by result (accepted, duplicate, rejected).",
            ["result"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "branchwatch_collector_rejected",
            "Rejected messages (and events refused by the floor model), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.missing = Counter(
            "branchwatch_collector_events_missing",
            "Events skipped in an agent's seq (gaps); a replay is requested for them.",
            registry=self.registry,
        )
        self.connected = Gauge(
            "branchwatch_collector_mqtt_connected",
            "1 while the collector is connected and subscribed to the broker.",
            registry=self.registry,
        )
        self.lag = Histogram(
            "branchwatch_collector_ingest_lag_seconds",
            "Receive time minus event time, for live (not replayed) events.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        # Pre-create the result children so every series exists from the start.
        self.accepted = self.messages.labels("accepted")
        self.duplicate = self.messages.labels("duplicate")
        self.rejected_messages = self.messages.labels("rejected")

    def render(self) -> bytes:
        return generate_latest(self.registry)
