"""Grafana annotations of floor incidents: a required post emptied, or filled again.

The store notes incidents as events are applied (under the collector's lock,
no I/O); the maintenance thread drains them into this annotator's bounded
queue; one worker thread posts them to Grafana. Nothing here runs on the MQTT
thread, nothing here raises into the collector: a failed post is counted
(``branchwatch_collector_annotations_total{result="failed"}``) and logged at
most once a minute, with the reason and never the token.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from prometheus_client import CollectorRegistry

from branchwatch.config import read_secret
from branchwatch.contract import metrics
from branchwatch.logthrottle import ThrottledLog
from collector import selfmetrics
from collector.config import GrafanaConfig
from collector.floor.posts import PostIncident
from dashboards.api import GrafanaConnection, GrafanaError

log = logging.getLogger(__name__)

FAILURE_LOG_INTERVAL: Final = 60.0
TAG: Final = "branchwatch"  # the floor board's annotation query selects on it


class Annotations(Protocol):
    """What the annotator needs of Grafana (a :class:`GrafanaConnection`, or a fake)."""

    def annotate(
        self, dashboard_uid: str, time_ms: int, tags: list[str], text: str, end_ms: int | None
    ) -> object: ...


def tags_for(incident: PostIncident) -> list[str]:
    return [
        TAG,
        f"region:{incident.region}",
        f"branch:{incident.branch}",
        f"post:{incident.position}",
        f"post-{incident.kind}",
    ]


def duration_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def text_for(incident: PostIncident, post_names: Mapping[int, str]) -> str:
    name = post_names.get(incident.position)
    post = f"Post {incident.position}" + (f" ({name})" if name else "")
    where = f"{incident.region}/{incident.branch}"
    if incident.kind == "emptied":
        return f"{post} emptied at {where}"
    empty_for = duration_text(incident.ts - incident.empty_since)
    return f"{post} filled at {where} after {empty_for} empty"


class Annotator:
    def __init__(
        self,
        config: GrafanaConfig,
        registry: CollectorRegistry,
        post_names: Mapping[int, str],
        connect: Callable[[GrafanaConfig], Annotations] | None = None,
    ) -> None:
        self.config = config
        self.post_names = dict(post_names)
        self._connect = connect or _connect
        self._queue: queue.Queue[PostIncident | None] = queue.Queue(config.queue_size)
        self._thread: threading.Thread | None = None
        self._failures = ThrottledLog(log, FAILURE_LOG_INTERVAL)
        counter = selfmetrics.counter(metrics.COLLECTOR_ANNOTATIONS, registry)
        self.posted = counter.labels("posted")
        self.failed = counter.labels("failed")
        self.dropped = counter.labels("dropped")
        self._grafana: Annotations | None = None

    def connect(self) -> None:
        """Read the token and set up the client (no request yet); ConfigError if unusable."""
        self._grafana = self._connect(self.config)

    def start(self) -> None:
        """Start posting (connects first if :meth:`connect` was not called)."""
        if self._grafana is None:
            self.connect()
        self._thread = threading.Thread(target=self._run, name="collector-grafana", daemon=True)
        self._thread.start()
        log.info(
            "annotating Grafana dashboard %s at %s", self.config.dashboard_uid, self.config.url
        )

    def submit(self, incidents: list[PostIncident], dropped_before: int = 0) -> None:
        """Queue incidents without blocking; a full queue drops (and counts) the newest.

        ``dropped_before``: incidents already lost upstream (the store's bound), counted too.
        """
        if dropped_before:
            self.dropped.inc(dropped_before)
        for incident in incidents:
            try:
                self._queue.put_nowait(incident)
            except queue.Full:
                self.dropped.inc()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is None:
            return
        # A full queue: the worker is a daemon thread and dies with the process.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            incident = self._queue.get()
            if incident is None:
                return
            self._post(incident)

    def _post(self, incident: PostIncident) -> None:
        assert self._grafana is not None
        filled = incident.kind == "filled"
        try:
            self._grafana.annotate(
                self.config.dashboard_uid,
                int((incident.empty_since if filled else incident.ts) * 1000),
                tags_for(incident),
                text_for(incident, self.post_names),
                int(incident.ts * 1000) if filled else None,
            )
        except GrafanaError as exc:
            self.failed.inc()
            self._log_failure(str(exc))
        except Exception as exc:  # a worker thread must survive anything
            self.failed.inc()
            self._log_failure(f"unexpected {type(exc).__name__}: {exc}")
        else:
            self.posted.inc()

    def _log_failure(self, reason: str) -> None:
        self._failures.warning("Grafana annotation failed: %s", reason)


def _connect(config: GrafanaConfig) -> Annotations:
    token = read_secret(config.token_file, "Grafana token")
    return GrafanaConnection(config.url, token, timeout=config.timeout_seconds)
