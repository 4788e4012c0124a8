"""``branchwatch simulate`` when the broker cannot be used: one line naming it, never a
traceback, never a silent exit 0; and the --ca-file it trusts."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker, free_port
from branchwatch.config import parse_broker_url
from branchwatch.sim.publisher import BrokerUnavailableError, SimPublisher, SimSettings
from tests.integration.test_collector_tls import make_certificates
from tests.integration.test_sim_publisher import Watcher
from tests.support import require_binary, run_cli, wait_until

pytestmark = pytest.mark.integration


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("simulate", "--seed", "1", *args)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("branchwatch: error")]


def test_a_missing_ca_file_is_a_config_error_naming_it() -> None:
    result = simulate("--ca-file", "/nonexistent.pem", "--broker", "mqtts://127.0.0.1:8883")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        "branchwatch: error: --ca-file /nonexistent.pem: cannot read the CA certificates: "
        "No such file or directory"
    ], result.stderr


def test_an_unreachable_broker_fails_at_once_naming_it() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = simulate("--broker", url, "--duration", "3")
    assert time.monotonic() - started < 10
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"branchwatch: error: cannot connect to the broker {url}: Connection refused"
    ], result.stderr
    assert "events in" not in result.stderr, "nothing was simulated"


def test_a_broker_that_never_answers_times_out() -> None:
    # Listening but never accepting: the kernel completes the TCP handshake, no CONNACK comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = SimSettings(
            broker=parse_broker_url(f"mqtt://127.0.0.1:{port}"), branches=1, connect_timeout=1.0
        )
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError) as caught:
            SimPublisher(settings).start()
        assert time.monotonic() - started < 3
    assert str(caught.value) == f"the broker mqtt://127.0.0.1:{port} did not answer within 1 s"


def test_a_broker_that_refuses_us_is_named_with_its_reason() -> None:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    with EmbeddedBroker("mosquitto", extra_config=["allow_anonymous false"]) as broker:
        result = simulate("--broker", broker.url, "--duration", "3")
    assert result.returncode == 1, result.stderr
    assert error_lines(result) == [
        f"branchwatch: error: the broker {broker.url} did not accept the connection: "
        "refused (Not authorized)"
    ], result.stderr


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, str, Path]]:
    """A Mosquitto with a plain listener (for the watcher) and a TLS one; (broker, URL, CA)."""
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    listener = [f"listener {port} 127.0.0.1", f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    with EmbeddedBroker("mosquitto", extra_config=listener) as broker:
        yield broker, f"mqtts://127.0.0.1:{port}", ca


def test_ca_file_is_trusted_and_an_unknown_ca_is_refused(
    tls_broker: tuple[EmbeddedBroker, str, Path],
) -> None:
    broker, url, ca = tls_broker
    watcher = Watcher(broker.port)
    try:
        trusted = simulate(
            "--broker", url, "--ca-file", str(ca), "--speed", "600", "--duration", "2"
        )
        assert trusted.returncode == 0, trusted.stderr
        wait_until(lambda: len(watcher.events()) == 3, 5, "events of 3 branches over TLS")
    finally:
        watcher.close()
    untrusted = simulate("--broker", url, "--duration", "2")  # the system CAs do not know ours
    assert untrusted.returncode == 1
    [line] = error_lines(untrusted)
    assert line.startswith(f"branchwatch: error: cannot connect to the broker {url}: ")
    assert "certificate verify failed" in line
