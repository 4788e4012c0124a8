"""The collector's MQTT session against a real Mosquitto: what it logs when the
connection ends because we stop, and when the broker goes away."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from branchwatch.broker import EmbeddedBroker
from collector.config import MqttConfig
from collector.mqtt import MqttSession
from tests.support import wait_until

pytestmark = pytest.mark.integration


class Session(MqttSession):
    """A started session that notes when it lost the broker."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.lost = threading.Event()
        config = MqttConfig(
            broker=broker.url,
            client_id="session-test",
            reconnect_min_seconds=0.2,
            reconnect_max_seconds=1.0,
        )
        super().__init__(config, lambda topic, payload: None, on_lost=self.lost.set)


@pytest.fixture
def session(mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> Iterator[Session]:
    caplog.set_level(logging.DEBUG, "collector.mqtt")
    started = Session(mosquitto)
    started.start()
    try:
        wait_until(started.ready.is_set, 10, "subscribed")
        yield started
    finally:
        started.stop()


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(level, text) for name, level, text in caplog.record_tuples if name == "collector.mqtt"]


def test_a_clean_stop_is_no_warning_and_no_reconnect(
    session: Session, mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    session.stop()
    assert session.lost.is_set() and not session.ready.is_set()
    assert session._thread is not None and not session._thread.is_alive()
    records = logged(caplog)
    assert (logging.INFO, f"disconnected from {mosquitto.url} (stopping)") in records
    assert all(level < logging.WARNING for level, _ in records), records
    assert not any("reconnect" in text for _, text in records), records


def test_a_lost_broker_is_a_warning_and_the_session_comes_back(
    session: Session, mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    mosquitto.restart()
    wait_until(session.lost.is_set, 10, "the loss noticed")
    wait_until(session.ready.is_set, 10, "subscribed again (backoff 0.2 s .. 1 s)")
    warnings = [text for level, text in logged(caplog) if level == logging.WARNING]
    assert warnings and warnings[0].startswith(f"disconnected from {mosquitto.url} (")
    assert warnings[0].endswith("; reconnecting")
