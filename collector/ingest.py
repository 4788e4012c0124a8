"""The ingest hot path: topic + payload in, store updated, outcome counted.

Runs on the MQTT client's network thread. It does no I/O and logs rejects
at most once per reason per minute, so a flood of bad input costs counters,
not log lines. Everything that fails the contract is counted, never raised.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from branchwatch.contract import decode_events, decode_status, parse_topic
from branchwatch.contract.codec import Payload
from branchwatch.contract.topics import AgentTopic
from branchwatch.errors import ContractError
from branchwatch.logthrottle import ThrottledLog
from collector.floor.agents import describe_new_spool
from collector.selfmetrics import SelfMetrics
from collector.store import ApplyResult, Store

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL: Final = 60.0
# The cyclic garbage collector's thresholds for a collector process. With Python's
# defaults (700, 10, 10) collections ran so often over a region's state that they took
# ~25 % of the ingest's CPU (docs/benchmarks.md); the ingest makes little cyclic
# garbage (msgspec structs, dicts and lists that die young), so they can be rarer.
GC_THRESHOLDS: Final = (50_000, 20, 100)
# Topics already checked (one per agent and kind): a region's ~40,000 agents fit; past
# that the cache starts again rather than grow with a flood of made-up names.
TOPIC_CACHE_SIZE: Final = 100_000


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` for this process (the collector's, at start)."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_long_lived() -> None:
    """Take what is alive now (modules, classes, the state restored from a snapshot) out
    of the garbage collector's sight, so that a full collection, which holds every
    thread as long as it runs, scans only what came after: restored from a 2,000-branch
    snapshot and fed 80,000 messages, a store's full collection took 3 ms instead of 55.

    Safe for a collector at start. A frozen object that later becomes garbage in a
    reference cycle is never freed, but the floor state has no cycles to lose: its
    structs are ``gc=False`` (the collector could not free a cycle through them anyway),
    and its dicts and lists are freed by reference counting when replaced or dropped;
    modules and classes live as long as the process. What start-up leaves alive and
    drops in a cycle later is a few objects, once. Collected first, so that no garbage
    made so far is frozen."""
    gc.collect()
    gc.freeze()


class Ingestor:
    def __init__(
        self,
        store: Store,
        lock: threading.Lock,
        metrics: SelfMetrics,
        topic_prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lock = lock
        self.metrics = metrics
        self.prefix = topic_prefix
        self.clock = clock
        self._rejects = ThrottledLog(log, REJECT_LOG_INTERVAL)
        self._topics: dict[str, AgentTopic] = {}
        # Bumped on every change, so the snapshotter can skip idle periods.
        self.changes = 0

    def handle(self, topic: str, payload: Payload) -> None:
        received = self.clock()
        try:
            where = self._topics.get(topic)
            if where is None:
                where = self._parse_topic(topic)
            if where.kind == "events":
                self._events(where.region, where.branch, where.agent, payload, received)
            elif where.kind == "status":
                self._status(where.region, where.branch, where.agent, payload, received)
            else:
                raise ContractError("bad_topic", "the collector does not take commands")
        except ContractError as exc:
            self.metrics.rejected_messages.inc()
            self._refuse(exc.reason, 1, f"{topic}: {exc.detail or exc.reason}")

    def _parse_topic(self, topic: str) -> AgentTopic:
        """:func:`parse_topic`, remembered: splitting and checking ids costs more than
        the dict lookup of a topic seen before (a bad topic is checked every time)."""
        where = parse_topic(topic, self.prefix)
        topics = self._topics
        if len(topics) >= TOPIC_CACHE_SIZE:
            topics.clear()
        topics[topic] = where
        return where

    def _events(self, region: str, branch: str, agent: str, payload: Payload, now: float) -> None:
        events = decode_events(payload)
        with self.lock:
            result = self.store.apply_events(region, branch, agent, events, now)
            self.changes += 1
        if _to_count(result):  # rarely: the hint's string is not built for nothing
            self.count(result, topic_hint=f"{region}/{branch}/{agent}")
        if result.applied or result.late or result.rejected or result.held:
            self.metrics.accepted.inc()
        else:
            self.metrics.duplicate.inc()
        applied = result.applied
        if applied == 1:
            # Lag of live events only: a replayed or late one is old on purpose.
            self.metrics.lag.observe(max(0.0, now - events[-1].ts))
        elif applied:
            self.metrics.lag.observe_many([max(0.0, now - e.ts) for e in events[-applied:]])

    def _status(self, region: str, branch: str, agent: str, payload: Payload, now: float) -> None:
        if not payload:
            # An empty retained message is how an operator clears a status: nothing to apply.
            self.metrics.accepted.inc()
            return
        status = decode_status(payload)
        refused: dict[str, int] = {}
        with self.lock:
            self.store.apply_status(region, branch, agent, status, now, refused)
            self.changes += 1
        self.metrics.accepted.inc()
        for reason, count in refused.items():
            self._refuse(reason, count, f"{region}/{branch}/{agent}: status (in part) refused")

    def count(self, result: ApplyResult, topic_hint: str) -> None:
        """Count what became of events in the self-metrics (a message's, or a rebuild's).

        Looks at the fields :func:`_to_count` checks: keep the two alike."""
        if result.missing:
            self.metrics.missing.inc(result.missing)
        for switch in result.new_spools:
            log.warning("%s: %s", topic_hint, describe_new_spool(switch))
        for reason, count in result.rejected.items():
            self._refuse(
                reason, count, f"{topic_hint}: {count} event(s) refused by the floor model"
            )
        for reason, count in result.refused.items():
            self._refuse(reason, count, f"{topic_hint}: {count} label(s) left out (series cap)")

    def _refuse(self, reason: str, count: int, detail: str) -> None:
        self.metrics.rejected.labels(reason).inc(count)
        self._rejects.warning("rejected (%s) %s", reason, detail, key=reason)


def _to_count(result: ApplyResult) -> bool:
    """Whether :meth:`Ingestor.count` has anything to count or log in ``result``."""
    return bool(result.missing or result.new_spools or result.rejected or result.refused)
