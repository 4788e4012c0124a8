"""The running collector: wires store, ingest, MQTT, HTTP and snapshots.

Threads: paho's network thread applies messages; the HTTP server's threads
render; one maintenance thread snapshots, expires stale branches, asks agents
for replays (gaps, rebuilds: collector/gaps.py, collector/rebuild.py) and
rebuilds the branches whose replays are in; with floor notices on, a notice
thread publishes the notices that fell due. The main thread only waits for
SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Final

import prometheus_client

from branchwatch.config import parse_listen
from branchwatch.contract import Replay, encode, topic_for
from branchwatch.logthrottle import ThrottledLog
from collector.config import CollectorConfig
from collector.errors import CollectorError, SnapshotError
from collector.grafana import Annotator
from collector.http import ApiState, CollectorHttpServer
from collector.ingest import Ingestor, freeze_long_lived
from collector.mqtt import MqttSession
from collector.notices.book import Outbound
from collector.rebuild import MAX_HELD
from collector.screen import LobbyScreen
from collector.selfmetrics import SelfMetrics
from collector.statefile import StateDirError, StateFile
from collector.store import Store

log = logging.getLogger(__name__)

MAINTENANCE_TICK: Final = 0.5
STALE_CHECK_INTERVAL: Final = 60.0
MAINTENANCE_ERROR_LOG_INTERVAL: Final = 60.0
STALE_GRACE: Final = 3600.0
# A notice leaves at most this long after its deadline (a tick costs one heap peek).
NOTICE_TICK: Final = 0.25
# Notices wait this long after MQTT becomes ready (start, restore, reconnect): the acks
# and staffing the broker queued for us, and the replays asked for, are applied first,
# so no step is taken on a floor that has already answered.
NOTICE_HOLD: Final = 5.0
# A snapshot is encoded in slices of this many seconds (about 40 branches), each followed
# by a rest as long (see PacedLock).
SNAPSHOT_SLICE: Final = 0.001
SNAPSHOT_REST: Final = 0.001


class PacedLock:
    """The store lock as a snapshot takes it (around each branch), with rests.

    Releasing the lock between branches is not enough on its own: the snapshotting
    thread still holds the interpreter, and a thread woken by a message or a request
    waits up to the switch interval (5 ms) for it, each time, while the broker and the
    clients compete for the same cores. So after each release, once a slice of work
    has passed, this thread sleeps a rest: a 2,000-branch snapshot spreads its ~50 ms
    over ~0.1 s and takes at most half a core (bench.latency, docs/benchmarks.md).
    """

    def __init__(
        self,
        lock: threading.Lock,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._sleep = sleep
        self._since = clock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
        if self._clock() - self._since >= SNAPSHOT_SLICE:
            self._sleep(SNAPSHOT_REST)
            self._since = self._clock()


class Collector:
    def __init__(
        self,
        config: CollectorConfig,
        clock: Callable[[], float] = time.time,
        *,
        rebuild: bool = True,
    ) -> None:
        """``rebuild``: an agent the collector has no seq of is rebuilt from its replay
        (collector/rebuild.py); off only to measure the steady state (bench.ingest)."""
        config.validate()
        self.config = config
        self.clock = clock
        self.rebuild = rebuild
        self.lock = threading.Lock()
        self.metrics = SelfMetrics()
        self.annotator: Annotator | None = None
        if config.grafana.enabled:
            # Connect first: a bad token file stops the start before anything listens.
            post_names = {post.position: post.name for post in config.floor.posts}
            self.annotator = Annotator(config.grafana, self.metrics.registry, post_names)
            self.annotator.connect()
        self.state_file = StateFile(config.state.dir) if config.state.dir else None
        self.store = self._restore()
        written = None if self.state_file is None else self.state_file.written_at()
        if written is not None:
            self.metrics.snapshot_success.set(written)
        if self.annotator is not None:
            self.store.record_incidents = True
        # The first session asks every agent of a restored snapshot for what came after it.
        self._first_session = True
        self.ingestor = Ingestor(self.store, self.lock, self.metrics, config.mqtt.topic_prefix)
        # Summed as /metrics renders the floor, just before the self-metrics.
        exposition = self.store.exposition
        self.metrics.count_acks_ignored(lambda: exposition.acks_ignored)
        self.mqtt = MqttSession(
            config.mqtt, self.ingestor.handle, on_ready=self._ready, on_lost=self._lost
        )
        host, port = parse_listen(config.http.listen)
        api = ApiState(
            self.store,
            self.lock,
            self.metrics,
            self.mqtt.ready.is_set,
            clock,
            docs_url=config.http.docs_url,
            screen=LobbyScreen.from_config(config),
        )
        self.http = CollectorHttpServer((host, port), api, config.http)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._notice_thread: threading.Thread | None = None
        self._notices_from: float | None = None  # monotonic time notices may go; None: offline
        self._snapshotted_changes = self.ingestor.changes
        # A state dir that stays broken fails every snapshot interval: its error is logged
        # once a minute (with how many were held back), and at once again after a success.
        self._maintenance_errors = ThrottledLog(log, MAINTENANCE_ERROR_LOG_INTERVAL)

    # lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.annotator is not None:
            self.annotator.start()
        self._spawn("http", self.http.serve_forever)
        self.mqtt.start()
        self._spawn("maintenance", self._maintain)
        if self.store.notices_enabled:
            self._notice_thread = self._spawn("notices", self._send_notices)
        log.info("serving %s/metrics and %s/api/v1/branches", self.http.url, self.http.url)

    def stop(self) -> None:
        self._stop.set()
        if self._notice_thread is not None:
            # Before MQTT stops: a notice taken from the store is published, not lost.
            self._notice_thread.join(timeout=2.0)
        self.mqtt.stop()
        self.http.shutdown()
        self.http.server_close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self.annotator is not None:
            self.annotator.stop()
        self.snapshot()
        log.info("stopped")

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; snapshot and exit cleanly."""
        freeze_long_lived()  # the process is the collector's: start-up and restore are done
        done = threading.Event()

        def _signal(signum: int, frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            done.set()

        previous = {s: signal.signal(s, _signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            done.wait()
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"collector-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # state ---------------------------------------------------------------------------

    def _restore(self) -> Store:
        floor, thresholds = self.config.floor, self.config.thresholds
        notices = self.config.notices if self.config.notices.enabled else None
        rebuild = self.rebuild
        if self.state_file is None:
            return Store(floor, thresholds=thresholds, notices=notices, rebuild=rebuild)
        data = self.state_file.read()
        if data is None:
            log.info("no snapshot in %s: starting empty", self.state_file.dir)
            return Store(floor, thresholds=thresholds, notices=notices, rebuild=rebuild)
        try:
            store = Store.restore(
                floor, data, thresholds=thresholds, notices=notices, rebuild=rebuild
            )
        except CollectorError as exc:
            moved = self.state_file.quarantine()
            log.error("snapshot unusable (%s); moved to %s, starting empty", exc, moved)
            return Store(floor, thresholds=thresholds, notices=notices, rebuild=rebuild)
        log.info("restored %d branches from %s", store.branch_count, self.state_file.path)
        return store

    def snapshot(self) -> None:
        if self.state_file is None:
            return
        # Read first: a change made while the branches are encoded may be in this
        # snapshot or not, and is saved again by the next one either way.
        changes = self.ingestor.changes
        chunks = self.store.snapshot_chunks(PacedLock(self.lock))
        try:
            self.state_file.write(chunks)
        except (StateDirError, SnapshotError):
            # Retried at the next interval (the changes are still unsaved); the caller logs.
            self.metrics.snapshot_failures.inc()
            raise
        self.metrics.snapshot_success.set(time.time())
        self._snapshotted_changes = changes
        self._maintenance_errors.forget(StateDirError)

    # MQTT events (network thread) ----------------------------------------------------

    def _ready(self, session_present: bool) -> None:
        """Subscribed. After a restore, every agent is asked for what came after the
        snapshot; when the broker had no session of ours (a restart without persistence,
        another broker), for what came after its last seq: nothing was queued for us."""
        self.metrics.connected.set(1)
        self._notices_from = time.monotonic() + NOTICE_HOLD
        first, self._first_session = self._first_session, False
        with self.lock:
            if not session_present:
                requests = self.store.session_lost()
            else:
                # A rebuild's timers ran while we were away: its answer may still be queued.
                self.store.reask_rebuilds()
                requests = self.store.replay_requests() if first else []
        for region, branch, agent, from_seq in requests:
            self._ask_replay(region, branch, agent, from_seq)
        if requests:
            why = "since the snapshot" if first else "as the broker had lost our session"
            log.info("asked %d agents to replay %s", len(requests), why)

    def _lost(self) -> None:
        self.metrics.connected.set(0)
        self._notices_from = None

    def _ask_replay(self, region: str, branch: str, agent: str, from_seq: int) -> None:
        topic = topic_for(region, branch, agent, "cmd", self.config.mqtt.topic_prefix)
        self.mqtt.publish(topic, encode(Replay(v=1, from_seq=from_seq)))

    # maintenance thread --------------------------------------------------------------

    def _maintain(self) -> None:
        interval = self.config.state.snapshot_interval_seconds
        next_snapshot = time.monotonic() + interval
        # After a restart, give agents time to be heard again before anything counts as
        # stale: last-received times restored from a snapshot are as old as the outage.
        next_stale = time.monotonic() + min(self.config.state.stale_after_seconds, STALE_GRACE)
        while not self._stop.wait(MAINTENANCE_TICK):
            try:
                self._forward_incidents()
                self._replays()
                now = time.monotonic()
                if now >= next_snapshot:
                    next_snapshot = now + interval
                    if self.ingestor.changes != self._snapshotted_changes:
                        self.snapshot()
                if now >= next_stale:
                    next_stale = now + STALE_CHECK_INTERVAL
                    self._expire_stale()
            except CollectorError as exc:
                self._maintenance_errors.error("%s", exc, key=type(exc))

    def _forward_incidents(self) -> None:
        if self.annotator is None:
            return
        with self.lock:
            incidents = self.store.drain_incidents()
            dropped, self.store.incidents_dropped = self.store.incidents_dropped, 0
        if incidents or dropped:
            self.annotator.submit(incidents, dropped)

    def _replays(self) -> None:
        """Ask for the replays due (while connected); rebuild the branches whose are in."""
        if not self.mqtt.ready.is_set():
            return  # an ask waits for the connection, and so do the rebuilds' timers
        with self.lock:
            now = self.clock()
            asks = self.store.replay_asks(now, self.config.mqtt.replay_min_interval_seconds)
            rebuilt = self.store.settle_rebuilds(now)
        for ask in asks:
            self._ask_replay(*ask)
        for done in rebuilt:
            where = f"{done.region}/{done.branch}"
            self.ingestor.count(done.events, topic_hint=where)
            log.info(
                "branch %s rebuilt from the replay of %s: %d events applied, %d of earlier days "
                "left out, %d seqs missing between them%s",
                where,
                ", ".join(done.agents),
                done.events.applied + done.events.late,
                done.before_day,
                done.events.missing,
                f", {done.let_go} oldest beyond the {MAX_HELD} held" if done.let_go else "",
            )

    # notice thread ----------------------------------------------------------------------

    def _send_notices(self) -> None:
        """Publish the notices due, every tick, while MQTT is ready and past the hold."""
        holding = True
        while not self._stop.wait(NOTICE_TICK):
            start = self._notices_from
            if start is None or not self.mqtt.ready.is_set() or time.monotonic() < start:
                holding = True
                continue
            if holding:
                holding = False
                log.info("floor notices: sending (connected for %.0f s)", NOTICE_HOLD)
            try:
                with self.lock:
                    due = self.store.due_notices(self.clock())
            except Exception:
                # A bug for one branch must not silence every branch's notices.
                log.exception("internal error while taking the notices due")
                continue
            for outbound in due:
                self._publish_notice(outbound)

    def _publish_notice(self, outbound: Outbound) -> None:
        region, branch, agent, notify = outbound
        topic = topic_for(region, branch, agent, "cmd", self.config.mqtt.topic_prefix)
        if not self.mqtt.publish(topic, encode(notify)):
            self.metrics.notices_unpublished.inc()
            log.error(
                "notice %s for post %d of %s/%s: the MQTT client refused it",
                notify.id, notify.position, region, branch,
            )  # fmt: skip
            return
        # No text at INFO: a follow-up names the teller.
        log.info("notice %s sent to post %d of %s/%s", notify.id, notify.position, region, branch)
        log.debug("notice %s via agent %s: %s", notify.id, agent, notify.text)

    def _expire_stale(self) -> None:
        with self.lock:
            dropped = self.store.expire_stale(self.clock(), self.config.state.stale_after_seconds)
        for region, branch in dropped:
            log.info("branch %s/%s is stale: dropped from metrics", region, branch)


def disable_created_series() -> None:
    """``*_created`` samples are noise for a long-running collector; 1 series saved each."""
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
