"""The collector's MQTT session: paho-mqtt on its own network thread.

Why paho and a thread, not aiomqtt: measured here, a bare paho subscriber
takes ~2.4x the messages per second of aiomqtt, and the ingest
hot path must keep up with a region. Reconnection is our own outer loop with
exponential backoff (paho's built-in one cannot say why a connection failed,
and an installer needs "certificate verify failed", not silence); we
re-subscribe in every ``on_connect``, so a broker that lost our session still
feeds us.

With several brokers (``mqtt.broker`` a list) a failed or lost connection moves
on to the next at once, same client id; only a full round of failures waits.
Events a dead broker acknowledged but never delivered show up as seq gaps,
which the replay requests fill.

The client is paho with a batched receive path (collector/mqttwire.py): the
PUBLISH packets of one socket read are applied one by one, then acknowledged
with one write. paho's own per-packet path would cost the collector more than
half its ingest rate (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from branchwatch.config import read_secret
from branchwatch.contract.codec import Payload
from branchwatch.contract.topics import subscription_filter
from branchwatch.failover import BrokerRotation
from branchwatch.logthrottle import ThrottledLog
from branchwatch.retry import Backoff
from collector.config import MqttConfig
from collector.mqttwire import BatchingClient, batching_supported

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, Payload], None]

# Off only to measure paho's own receive path (bench.consumers --paho-reads).
BATCHED_READS = True


@functools.cache
def _batching() -> bool:
    if not batching_supported():
        log.warning("this paho-mqtt lacks what batched reads need: using its own (slower) path")
        return False
    return True


class MqttSession:
    """Subscribes to events and status of every agent (of the configured regions)."""

    def __init__(
        self,
        config: MqttConfig,
        on_message: MessageHandler,
        on_ready: Callable[[bool], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        """``on_ready(session_present)``: subscribed; False when the broker had no session
        of ours, so nothing was queued for us while we were away."""
        self.config = config
        self.brokers = BrokerRotation(config.brokers)
        self._handler = on_message
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._v5 = config.protocol == "5"
        self.ready = threading.Event()
        self._was_ready = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = ThrottledLog(log)
        self._pending_subscribe: int | None = None
        self._session_present = False
        self.client = self._build_client()

    @property
    def filters(self) -> list[str]:
        regions = self.config.regions or ("+",)
        prefix = self.config.topic_prefix
        return [
            subscription_filter(kind, region, prefix)
            for region in regions
            for kind in ("events", "status")
        ]

    def _build_client(self) -> paho.Client:
        config = self.config
        kind: type[paho.Client] = BatchingClient if BATCHED_READS and _batching() else paho.Client
        client = kind(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            # 3.1.1: a persistent session; v5 says it with clean_start and an expiry.
            clean_session=None if self._v5 else False,
            # We reconnect in our own loop, which can say *why* a connection failed.
            reconnect_on_failure=False,
        )
        if config.username:
            password = (
                read_secret(config.password_file, "MQTT password") if config.password_file else None
            )
            client.username_pw_set(config.username, password)
        tls = config.tls_context()  # bad TLS files: a ConfigError naming the file
        if tls is not None:
            client.tls_set_context(tls)
        client.max_inflight_messages_set(100)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        client.on_message = self._message
        if isinstance(client, BatchingClient):
            client.on_publish_received = self._received
        return client

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="collector-mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)
        self.ready.clear()

    def _run(self) -> None:
        """Connect, serve the session until it drops, back off, again: until stopped."""
        config = self.config
        backoff = Backoff(config.reconnect_min_seconds, config.reconnect_max_seconds)
        properties: Properties | None = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = config.session_expiry_seconds
        brokers = self.brokers
        log.info("connecting to %s as %s", brokers.describe(), config.client_id)
        while not self._stopping.is_set():
            address = brokers.address
            try:
                self.client.connect(
                    address.host,
                    address.port,
                    keepalive=config.keepalive_seconds,
                    clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=properties,
                )
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                failure = f"cannot connect to {brokers.describe()}: {exc}"
            else:
                try:
                    self.client.loop_forever(retry_first_connection=False)
                except Exception:
                    # A bug in a callback must cost a reconnect, not the network thread.
                    log.exception("MQTT session failed; reconnecting")
                    self.client.disconnect()
                failure = ""
                if self.ready.is_set() or self._was_ready:
                    backoff.reset()  # the session worked: start over
                    brokers.connected()
                self._was_ready = False
            lost = brokers.url
            if brokers.failed():
                delay = backoff.next()
                if failure:
                    self._report_failure(failure, delay)
            else:
                delay = 0.0
                if failure:
                    self._report_failure(failure)
                if not self._stopping.is_set():
                    log.warning("broker %s unusable; trying %s", lost, brokers.describe())
            if self._stopping.wait(delay):
                break

    def _report_failure(self, message: str, delay: float | None = None) -> None:
        # The same failure every few seconds for an hour is one log line a minute.
        retry = "" if delay is None else f" (retrying in {delay:.0f} s)"
        self._failures.error("%s%s", message, retry, key=message)

    def publish(self, topic: str, payload: bytes) -> bool:
        """QoS 1, not retained; paho queues it while the connection is down.

        False when the client refused it (its queue full, a topic or payload it
        cannot send): the message is lost.
        """
        try:
            info = self.client.publish(topic, payload, qos=1)
        except ValueError:
            return False
        return info.rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN)

    # paho callbacks (network thread) -------------------------------------------------

    def _connected(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._report_failure(f"{self.brokers.describe()} refused the connection: {reason}")
            return
        log.info(
            "connected to %s (session present: %s)", self.brokers.describe(), flags.session_present
        )
        self._session_present = bool(flags.session_present)
        if self._v5:
            _, mid = client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        else:  # 3.1.1 has no subscribe options, only a QoS
            _, mid = client.subscribe([(f, 1) for f in self.filters])
        self._pending_subscribe = mid

    def _subscribed(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._pending_subscribe:
            return
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused the subscription (check the ACL): %s", failed)
            return
        log.info("subscribed to %s", ", ".join(self.filters))
        self.ready.set()
        self._was_ready = True
        if self._on_ready is not None:
            self._on_ready(self._session_present)

    def _disconnected(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_ready = self.ready.is_set()
        self.ready.clear()
        if self._stopping.is_set():
            log.info("disconnected from %s (stopping)", self.brokers.describe())
        elif was_ready:
            log.warning("disconnected from %s (%s); reconnecting", self.brokers.describe(), reason)
        if self._on_lost is not None:
            self._on_lost()

    def _message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._received(message.topic, message.payload)

    def _received(self, topic: str, payload: Payload) -> None:
        try:
            self._handler(topic, payload)
        except Exception:
            # A bug here must not kill the network thread (paho would stop the loop).
            log.exception("internal error while handling a message on %s", topic)
