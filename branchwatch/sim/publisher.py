"""The simulator's edge: N simulated agents on one MQTT connection (paho-mqtt).

Simulated time lives in the models; here it meets the wall clock. Each tick
runs every model up to ``start + (now - wall_start) × speed`` and publishes
what happened, so an event's ``ts`` is the wall-clock time of the tick that
emits it (never later). Publishes QoS 1 to ``…/edge-1/events``, retains each
agent's status (at connect, every ``status_interval`` and ``offline`` on a clean
stop), and answers ``replay`` commands from the events it keeps: the protocol of
:mod:`branchwatch.agentlink`, shared with the edge agent. One connection carries
every simulated agent, so there is no per-agent will.

Starting needs the broker: no answer within ``connect_timeout`` is an error that
names it. Once connected, paho's network thread keeps the connection (reconnecting
with backoff) and only queues commands; the thread that calls
:meth:`SimPublisher.tick` owns the models.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from paho.mqtt.client import (
    Client,
    ConnectFlags,
    DisconnectFlags,
    MQTTMessage,
    MQTTMessageInfo,
    MQTTv5,
    MQTTv311,
)
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from branchwatch import __version__
from branchwatch.agentlink import (
    ClockSessions,
    batches,
    offline_status,
    online_status,
    read_command,
    replay_batches,
)
from branchwatch.config import BrokerAddress
from branchwatch.contract import (
    DeviceStatus,
    Notify,
    Replay,
    SpoolStatus,
    encode,
    parse_topic,
    topic_for,
)
from branchwatch.contract.messages import NOTICE_IDS_KEPT
from branchwatch.contract.topics import CONTRACT_VERSION, DEFAULT_PREFIX
from branchwatch.errors import BranchwatchError, ConfigError, ContractError
from branchwatch.failover import BrokerRotation
from branchwatch.mqttconfig import tls_context
from branchwatch.sim.generate import DEFAULT_REGIONS, make_branches
from branchwatch.sim.model import AGENT, BranchSim
from branchwatch.sim.profile import DEFAULT_SCENARIO, HOUR
from branchwatch.sim.retention import (
    DEFAULT_RETENTION_EVENTS,
    DEFAULT_RETENTION_SECONDS,
    SentEvents,
)

log = logging.getLogger(__name__)

VERSION: Final = f"{__version__}-sim"
PROTOCOLS: Final = {"5": MQTTv5, "3.1.1": MQTTv311}
CA_FILE_FLAG: Final = {"ca_file": "--ca-file"}  # how errors name the CA file
# Events ahead of the broker while it is unreachable; beyond, paho drops and the
# collector sees a seq gap and asks for a replay.
MAX_QUEUED_MESSAGES: Final = 100_000
CONNECT_TIMEOUT: Final = 10.0  # seconds for the first connection (TCP, TLS, CONNACK)


class BrokerUnavailableError(BranchwatchError):
    """The first connection to the broker failed: nothing was simulated."""


def broker_url(broker: BrokerAddress) -> str:
    host = f"[{broker.host}]" if ":" in broker.host else broker.host
    return f"{'mqtts' if broker.tls else 'mqtt'}://{host}:{broker.port}"


@dataclass(frozen=True)
class SimSettings:
    broker: BrokerAddress
    branches: int = 3
    regions: tuple[str, ...] = DEFAULT_REGIONS
    speed: float = 1.0
    seed: int = 1
    start_hour: float = 9.0
    mqtt_protocol: str = "5"
    seq_base: int = 1
    scenario: str = DEFAULT_SCENARIO
    # (opening, closing) hours of a real-length day; None keeps the scenario's day.
    day_hours: tuple[float, float] | None = None
    # Minutes between one day's close and the next opening; None keeps the day's own night.
    night_minutes: float | None = None
    ca_file: str | None = None
    prefix: str = DEFAULT_PREFIX
    tick: float = 0.1
    status_interval: float = 60.0
    retention_events: int = DEFAULT_RETENTION_EVENTS
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    keepalive: int = 30
    connect_timeout: float = CONNECT_TIMEOUT
    # More brokers (cluster nodes): tried in turn at start and whenever one is lost.
    fallback_brokers: tuple[BrokerAddress, ...] = ()


@dataclass
class SimStats:
    events: int = 0
    messages: int = 0
    replayed: int = 0
    dropped: int = 0
    bad_commands: int = 0
    notices: int = 0
    notice_repeats: int = 0  # second copies of a notice (an HA pair sends each twice)
    connects: int = 0


@dataclass
class SimAgent:
    sim: BranchSim
    events_topic: str
    status_topic: str
    sent: SentEvents = field(default_factory=SentEvents)
    # Notice ids this agent's intercom has shown, newest last: an HA pair's second copy
    # of a notice is not answered again (as the real agent does).
    heard: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def first_copy(self, notice_id: str) -> bool:
        """Whether ``notice_id`` is new here (then remembered), not a second copy."""
        if notice_id in self.heard:
            return False
        self.heard[notice_id] = None
        if len(self.heard) > NOTICE_IDS_KEPT:
            self.heard.popitem(last=False)
        return True


class SimPublisher:
    """Publishes the simulated branches of ``settings`` to one broker connection."""

    def __init__(self, settings: SimSettings, clock: Callable[[], float] = time.time) -> None:
        if settings.mqtt_protocol not in PROTOCOLS:
            raise ConfigError(f"MQTT protocol {settings.mqtt_protocol!r}: expected 5 or 3.1.1")
        self.settings = settings
        self._clock = clock
        self._wall_start = clock()
        self._sim_start = settings.start_hour * HOUR
        self.stats = SimStats()
        self._sessions = ClockSessions(self._wall_start)
        self.session = self._sessions.session  # the current connection's
        self.agents: dict[tuple[str, str], SimAgent] = {}
        for sim in make_branches(
            settings.branches,
            settings.seed,
            regions=settings.regions,
            start_hour=settings.start_hour,
            ts_origin=self._wall_start,
            speed=settings.speed,
            seq_base=settings.seq_base,
            scenario=settings.scenario,
            day_hours=settings.day_hours,
            night_minutes=settings.night_minutes,
        ):
            self.agents[(sim.region, sim.branch)] = SimAgent(
                sim,
                topic_for(sim.region, sim.branch, AGENT, "events", settings.prefix),
                topic_for(sim.region, sim.branch, AGENT, "status", settings.prefix),
                SentEvents(settings.retention_events, settings.retention_seconds),
            )
        self._commands: queue.SimpleQueue[tuple[SimAgent, Replay | Notify]] = queue.SimpleQueue()
        self._last_status = 0.0
        self.connected = threading.Event()
        # The broker's first answer (CONNACK, or closing on us) and why it said no.
        self._answered = threading.Event()
        self._refusal = ""
        brokers = (settings.broker, *settings.fallback_brokers)
        self.brokers = BrokerRotation([broker_url(broker) for broker in brokers])
        self._client = self._make_client()

    @property
    def command_filter(self) -> str:
        return f"{self.settings.prefix}/{CONTRACT_VERSION}/+/+/{AGENT}/cmd"

    def sim_now(self) -> float:
        """Simulated time now; 1 ms behind the clock so no ``ts`` is ever ahead of it."""
        return self._sim_start + (self._clock() - self._wall_start - 0.001) * self.settings.speed

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and wait for the broker to accept us (:class:`BrokerUnavailableError`
        naming it and why not, within ``connect_timeout``); from then on paho reconnects."""
        settings = self.settings
        broker, url = settings.broker, broker_url(settings.broker)
        log.info(
            "simulating %d branches at %g× for %s (MQTT %s, seed %d)",
            len(self.agents),
            settings.speed,
            url,
            settings.mqtt_protocol,
            settings.seed,
        )
        deadline = time.monotonic() + settings.connect_timeout
        self._client.connect_timeout = settings.connect_timeout
        while True:  # the first broker of the list that takes the connection
            try:
                self._client.connect(broker.host, broker.port, keepalive=settings.keepalive)
                break
            except OSError as exc:  # refused, unreachable, unknown host, TLS handshake
                reason = exc.strerror or str(exc) or type(exc).__name__
                if self.brokers.failed():
                    message = f"cannot connect to the broker {url}: {reason}"
                    raise BrokerUnavailableError(message) from exc
                log.warning("cannot connect to %s: %s; trying %s", url, reason, self.brokers.url)
                broker, url = self.brokers.address, self.brokers.url
        self._client.loop_start()
        answered = self._answered.wait(max(0.0, deadline - time.monotonic()))
        if answered and self.connected.is_set():
            return
        refusal = self._refusal
        self._client.loop_stop()
        self._client.disconnect()
        if not answered:
            raise BrokerUnavailableError(
                f"the broker {url} did not answer within {settings.connect_timeout:g} s"
            )
        raise BrokerUnavailableError(f"the broker {url} did not accept the connection: {refusal}")

    def run(self, stop: threading.Event, duration: float | None = None) -> SimStats:
        """Start, tick until ``stop`` is set or ``duration`` has passed, stop cleanly."""
        deadline = None if duration is None else time.monotonic() + duration
        self.start()  # fails before anything is simulated
        try:
            while not stop.is_set():
                self.tick()
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(self.settings.tick)
        finally:
            self.stop()
        return self.stats

    def stop(self, timeout: float = 3.0) -> None:
        """Retain ``offline`` for every agent (when connected), then disconnect."""
        deadline = time.monotonic() + timeout
        if self.connected.is_set():
            infos = [self._publish_status(agent, "offline") for agent in self.agents.values()]
            for info in infos:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._wait(info, remaining):
                    log.warning("offline statuses not all acknowledged before stopping")
                    break
        else:
            log.warning("not connected: the agents' offline statuses could not be published")
        self._client.disconnect()
        self._client.loop_stop()
        log.info(
            "stopped: %d events in %d messages, %d replayed, %d bad commands",
            self.stats.events,
            self.stats.messages,
            self.stats.replayed,
            self.stats.bad_commands,
        )

    def _wait(self, info: MQTTMessageInfo, timeout: float) -> bool:
        """Until the broker acknowledged ``info``, the connection is lost, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.connected.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                info.wait_for_publish(min(remaining, 0.1))
            except (RuntimeError, ValueError):
                return False
            if info.is_published():
                return True
        return False

    # -- the tick -------------------------------------------------------------------------------

    def tick(self) -> int:
        """Advance every branch to now, publish what happened, answer commands."""
        until = self.sim_now()
        published = 0
        for agent in self.agents.values():
            events = agent.sim.advance(until)
            if not events:
                continue
            rows = [(event.seq, encode(event)) for event in events]
            for event, (_, payload) in zip(events, rows, strict=True):
                agent.sent.add(event.seq, event.ts, payload)
            for batch in batches(rows):
                self._publish_events(agent, batch.payload)
            published += len(events)
        self.stats.events += published
        self._handle_commands()
        due = self._clock() - self._last_status >= self.settings.status_interval
        if due and self.connected.is_set():  # (re)connecting publishes them anyway
            self._publish_statuses()
        return published

    def _publish_events(self, agent: SimAgent, message: bytes) -> None:
        info = self._client.publish(agent.events_topic, message, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.stats.dropped += 1
        else:
            self.stats.messages += 1

    def _handle_commands(self) -> None:
        while True:
            try:
                agent, command = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, Replay):
                name = f"{agent.sim.region}/{agent.sim.branch}"
                replayed = 0
                for batch in replay_batches(agent.sent, command.from_seq, name):
                    self._publish_events(agent, batch.payload)
                    replayed += batch.event_count
                log.info("replay for %s from seq %d: %d events", name, command.from_seq, replayed)
                self.stats.replayed += replayed
            elif not agent.first_copy(command.id):
                self.stats.notice_repeats += 1
                log.debug("floor notice %s: a second copy, not shown again", command.id)
            else:
                self.stats.notices += 1
                log.info(
                    "floor notice %s for %s/%s post %d: %s",
                    command.id,
                    agent.sim.region,
                    agent.sim.branch,
                    command.position,
                    command.text,
                )
                agent.sim.receive_notice(command.id, command.position, command.text)

    # -- status ---------------------------------------------------------------------------------

    def _status(self, agent: SimAgent, state: str) -> bytes:
        now = self._clock()
        if state == "offline":
            return offline_status(self.session, now)
        devices = {d: DeviceStatus(kind=k, link="up") for d, k in agent.sim.devices.items()}
        return online_status(self.session, now, devices, SpoolStatus(), VERSION)

    def _publish_status(self, agent: SimAgent, state: str) -> MQTTMessageInfo:
        payload = self._status(agent, state)
        return self._client.publish(agent.status_topic, payload, qos=1, retain=True)

    def _publish_statuses(self) -> None:
        self._last_status = self._clock()
        for agent in self.agents.values():
            self._publish_status(agent, "online")

    # -- paho callbacks (network thread) --------------------------------------------------------

    def _make_client(self) -> Client:
        settings = self.settings
        client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"branchwatch-sim-{uuid.uuid4().hex[:12]}",
            protocol=PROTOCOLS[settings.mqtt_protocol],
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        if settings.broker.tls:
            client.tls_set_context(tls_context(settings.ca_file or "", names=CA_FILE_FLAG))
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda _client, _userdata: self._next_broker()
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            if not self._answered.is_set():  # start() reports it and gives up
                self._refusal = f"refused ({reason})"
                self._answered.set()
            else:
                log.warning("broker refused the connection: %s (retrying)", reason)
            return
        self.session = self._sessions.next_session()
        self.stats.connects += 1
        log.info("connected (session %d)", self.session)
        client.subscribe(self.command_filter, qos=1)
        self._publish_statuses()
        self.connected.set()
        self._answered.set()

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self._next_broker()
        if not self._answered.is_set():  # closed on us before any CONNACK
            self._refusal = f"it closed the connection first ({reason})"
            self._answered.set()
        if was_connected and reason.is_failure:
            log.warning("connection lost: %s (reconnecting with backoff)", reason)

    def _next_broker(self) -> None:
        """Point paho's own reconnect loop at the next broker of the list (if any)."""
        if len(self.brokers.urls) > 1:
            self.brokers.failed()
            # paho has no public way to retarget the reconnect of a client it keeps.
            self._client._host = self.brokers.address.host
            self._client._port = self.brokers.address.port
            log.info("reconnecting to %s", self.brokers.describe())

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        try:
            topic = parse_topic(message.topic, self.settings.prefix)
            agent = self.agents.get((topic.region, topic.branch))
            if agent is None or topic.kind != "cmd":
                raise ContractError("unknown_agent", f"no simulated agent at {message.topic}")
            command = read_command(message.payload)
        except ContractError as exc:
            self.stats.bad_commands += 1
            log.warning("bad command on %s: %s", message.topic, exc)
            return
        except Exception:  # an exception here would end paho's network thread
            self.stats.bad_commands += 1
            log.exception("unexpected error decoding a command on %s", message.topic)
            return
        self._commands.put((agent, command))
