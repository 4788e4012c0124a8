"""The collector's MQTT session against a real Mosquitto: what it logs when the
connection ends because we stop, and when the broker goes away."""

from __future__ import annotations

import logging
import threading

import pytest

from branchwatch.broker import EmbeddedBroker
from collector.config import MqttConfig
from collector.mqtt import MqttSession
from tests.support import wait_until

pytestmark = pytest.mark.integration


def session_for(broker: EmbeddedBroker, client_id: str) -> tuple[MqttSession, threading.Event]:
    lost = threading.Event()
    config = MqttConfig(
        broker=broker.url,
        client_id=client_id,
        reconnect_min_seconds=0.2,
        reconnect_max_seconds=1.0,
    )
    return MqttSession(config, lambda topic, payload: None, on_lost=lost.set), lost


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "collector.mqtt"]


def test_a_clean_stop_is_no_warning_and_no_reconnect(
    mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "collector.mqtt")
    session, lost = session_for(mosquitto, "clean-stop")
    session.start()
    wait_until(session.ready.is_set, 10, "subscribed")
    session.stop()
    assert lost.is_set() and not session.ready.is_set()
    assert session._thread is not None and not session._thread.is_alive()
    logged = records(caplog)
    assert (logging.INFO, f"disconnected from {mosquitto.url} (stopping)") in logged
    assert all(level < logging.WARNING for level, _ in logged), logged
    assert not any("reconnect" in message for _, message in logged), logged


def test_a_lost_broker_is_a_warning_and_the_session_comes_back(
    mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "collector.mqtt")
    session, lost = session_for(mosquitto, "lost-broker")
    session.start()
    try:
        wait_until(session.ready.is_set, 10, "subscribed")
        mosquitto.restart()
        wait_until(lost.is_set, 10, "the loss noticed")
        wait_until(session.ready.is_set, 10, "subscribed again (backoff 0.2 s .. 1 s)")
    finally:
        session.stop()
    warnings = [m for level, m in records(caplog) if level == logging.WARNING]
    assert warnings and warnings[0].startswith(f"disconnected from {mosquitto.url} (")
    assert warnings[0].endswith("; reconnecting")
