"""The agent's MQTT side: one connection at a time, reconnected by an explicit loop.

Per connection (``session`` +1, persisted, and carried by the will):
subscribe to our ``cmd`` topic, publish the retained online status, then
drain the spool in seq order (QoS 1; one PUBACK before the next message, so
the spool is marked sent exactly up to what the broker acknowledged),
republish the status on change and every ``status_interval_seconds``, and
answer ``replay`` / ``notify`` commands. A backlog goes out as arrays of up
to 500 events / 64 KiB; a live trickle as one event per message.

With several brokers (``mqtt.broker`` a list) a lost or refused connection
moves on to the next one at once, with the same client id and session; the
spool resends what the lost broker never acknowledged, and the collector's
replay requests fill what it acknowledged but never delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any, Final

import aiomqtt
import paho.mqtt.client as paho_client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent import status
from agent.config import AgentConfig
from agent.core import AgentCore
from agent.errors import AgentError
from agent.spool import SpoolWriteError
from branchwatch import agentlink
from branchwatch.config import BrokerAddress, read_secret
from branchwatch.contract import Notify, Replay
from branchwatch.errors import ContractError
from branchwatch.failover import BrokerRotation
from branchwatch.retry import Backoff

log = logging.getLogger(__name__)

STATUS_MIN_GAP: Final = 1.0  # seconds between two status messages at most once


class PublishRefusedError(AgentError):
    """The broker answered a publish with a failure reason code (MQTT 5: e.g. the ACL)."""


def client_for(
    config: AgentConfig,
    client_id: str,
    will: aiomqtt.Will | None,
    persistent: bool,
    password: str | None,
    tls: ssl.SSLContext | None,
    address: BrokerAddress | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client for ``address`` (default: the first broker), credentials and TLS."""
    mqtt = config.mqtt
    address = address or mqtt.broker_addresses()[0]
    v5 = mqtt.protocol == "5"
    properties = None
    if v5 and persistent:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = mqtt.session_expiry_seconds
    return aiomqtt.Client(
        address.host,
        address.port,
        identifier=client_id,
        username=mqtt.username or None,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=will,
        # Persistent session: the broker keeps our cmd subscription and queues
        # commands (a collector's replay request) while we are away.
        clean_session=None if v5 else not persistent,
        # MQTT 5 only; paho refuses any value but its default under 3.1.1.
        clean_start=(not persistent) if v5 else paho_client.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
        keepalive=mqtt.keepalive_seconds,
        timeout=mqtt.publish_timeout_seconds,
        tls_context=tls,
        max_inflight_messages=20,
    )


def fail_connect_on_close(client: aiomqtt.Client) -> None:
    """End the connect attempt when the broker closes the socket before its CONNACK.

    aiomqtt ignores such a close and waits out its whole timeout. A NATS node does
    it while the cluster elects a new leader for its session store: better to try
    the next broker at once than to sit out 15 s.
    """
    paho = client._client
    forward = paho.on_disconnect

    def on_disconnect(c: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        connecting = client._connected  # aiomqtt's future for the CONNACK
        if not connecting.done():
            connecting.set_exception(aiomqtt.MqttError(f"closed before CONNACK ({rc})"))
        forward(c, userdata, flags, rc, props)  # type: ignore[misc, call-arg]

    paho.on_disconnect = on_disconnect


class Publisher:
    def __init__(self, config: AgentConfig, core: AgentCore, stop: asyncio.Event) -> None:
        self.config = config
        self.core = core
        self.stop = stop
        mqtt = config.mqtt
        # Read once at start; never logged.
        self._password = (
            read_secret(mqtt.password_file, "MQTT password") if mqtt.password_file else None
        )
        self._tls = mqtt.tls_context()  # bad TLS files: a config error at start
        self.events_topic = config.topic("events")
        self.status_topic = config.topic("status")
        self.cmd_topic = config.topic("cmd")
        self.brokers = BrokerRotation(mqtt.brokers)
        self.connected = False
        self._online = False
        self.replays = 0
        self._refused: list[str] = []
        self._side_tasks: set[asyncio.Task[Any]] = set()  # this connection's replays
        self._all_tasks: set[asyncio.Task[Any]] = set()  # strong refs until done

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; return once ``stop`` is set."""
        mqtt = self.config.mqtt
        # Jitter: a fleet that lost its broker together does not come back together.
        backoff = Backoff(mqtt.reconnect_min_seconds, mqtt.reconnect_max_seconds, jitter=0.2)
        while not self.stop.is_set():
            self._online = False
            try:
                session = self.core.spool.next_session()
            except SpoolWriteError as exc:
                # A session number that is not on disk could be used again after a
                # restart, and an old will would pass for the new connection's: wait
                # for the disk (the devices are read meanwhile, events refused).
                log.warning("%s: cannot number a new connection; retrying in %.1f s",
                            exc, backoff.peek())  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), backoff.next())
                continue
            will = aiomqtt.Will(self.status_topic, agentlink.will(session), qos=1, retain=True)
            broker = self.brokers.describe()
            client = client_for(
                self.config,
                self.config.client_id,
                will,
                True,
                self._password,
                self._tls,
                self.brokers.address,
            )
            self._watch_pubacks(client)
            fail_connect_on_close(client)
            try:
                async with client:
                    log.info("connected to %s as session %d", broker, session)
                    self.connected = True
                    await self._serve(client, session)
                    return
            except (aiomqtt.MqttError, PublishRefusedError) as exc:
                # Start over only once a connection got as far as its online status: a
                # broker that accepts the connection but refuses our publishes is not hammered.
                if self._online:
                    backoff.reset()
                    self.brokers.connected()
                failed_url = self.brokers.url
                if self.brokers.failed():
                    log.warning("broker %s: %s; retrying in %.1f s", broker, exc, backoff.peek())
                    delay = backoff.next()  # the logged delay, give or take its jitter
                else:
                    delay = 0.0
                    log.warning("broker %s: %s; trying %s", failed_url, exc, self.brokers.url)
            finally:
                self.connected = False
            with contextlib.suppress(TimeoutError):  # back off, but wake up at once on stop
                await asyncio.wait_for(self.stop.wait(), delay)

    def _watch_pubacks(self, client: aiomqtt.Client) -> None:
        # aiomqtt resolves a publish on PUBACK whatever its reason code; an MQTT 5
        # broker says "not authorized" (ACL) there, and such events must stay unsent.
        paho = client._client
        forward = paho.on_publish

        def on_publish(c: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
            if rc.is_failure:
                self._refused.append(str(rc))
            forward(c, userdata, mid, rc, props)  # type: ignore[misc, call-arg]

        paho.on_publish = on_publish

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, retain: bool = False
    ) -> None:
        await client.publish(topic, payload, qos=1, retain=retain)
        if self._refused:
            reasons, self._refused = self._refused, []
            raise PublishRefusedError(
                f"broker refused a publish on {topic}: {reasons[0]} (check its ACL)"
            )

    async def _serve(self, client: aiomqtt.Client, session: int) -> None:
        await client.subscribe(self.cmd_topic, qos=1)
        self.core.status_changed.clear()
        await self._publish(
            client, self.status_topic, status.online(self.core, session), retain=True
        )
        self._online = True
        tasks = {
            asyncio.create_task(self._drain(client), name="drain"),
            asyncio.create_task(self._status_loop(client, session), name="status"),
            asyncio.create_task(self._commands(client), name="commands"),
            asyncio.create_task(self.stop.wait(), name="stop"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks | self._side_tasks:
                task.cancel()
            await asyncio.gather(*tasks, *self._side_tasks, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        # Clean shutdown: say offline ourselves, then DISCONNECT (the broker drops the will).
        payload = agentlink.offline_status(session, self.core.clock())
        await asyncio.wait_for(self._publish(client, self.status_topic, payload, retain=True), 2.0)
        log.info("published offline status (session %d)", session)

    async def _drain(self, client: aiomqtt.Client) -> None:
        spool = self.core.spool
        while True:
            batch = spool.unsent_batch()
            if batch is None:
                self.core.new_events.clear()  # no await since the check: no event missed
                await self.core.new_events.wait()
                continue
            await self._publish(client, self.events_topic, batch.payload)
            spool.mark_sent(batch.first_seq, batch.last_seq)

    async def _status_loop(self, client: aiomqtt.Client, session: int) -> None:
        interval = self.config.mqtt.status_interval_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.core.status_changed.wait(), interval)
            self.core.status_changed.clear()
            await self._publish(
                client, self.status_topic, status.online(self.core, session), retain=True
            )
            await asyncio.sleep(STATUS_MIN_GAP)

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                command = agentlink.read_command(message.payload)
            except ContractError as exc:
                log.warning("bad command ignored (%s): %s", exc.reason, exc.detail[:200])
                continue
            if isinstance(command, Replay):
                # Bound to this connection: cancelled with it (the collector asks again).
                task = self._spawn(
                    self._replay(client, command.from_seq), f"replay {command.from_seq}"
                )
                self._side_tasks.add(task)
            elif isinstance(command, Notify):
                # Not bound to the connection: a device write survives a broker hiccup.
                self._spawn(self.core.notify(command), f"notice {command.id}")

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._all_tasks.add(task)
        task.add_done_callback(self._side_done)
        return task

    def _side_done(self, task: asyncio.Task[Any]) -> None:
        self._side_tasks.discard(task)
        self._all_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A replay cut short by a lost connection is asked again by the collector.
            log.warning("%s failed: %s", task.get_name(), task.exception())

    async def _replay(self, client: aiomqtt.Client, from_seq: int) -> None:
        """Republish held events from ``from_seq`` up to the last acknowledged one.

        Events not yet acknowledged are the drain's: it sends them next anyway.
        """
        sent = 0
        for batch in agentlink.replay_batches(self.core.spool, from_seq):
            await self._publish(client, self.events_topic, batch.payload)
            sent += batch.event_count
        self.replays += 1
        log.info("replay from seq %d: republished %d events", from_seq, sent)
