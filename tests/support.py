"""Helpers the integration tests share: real processes, waiting on conditions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client.parser import text_string_to_metric_families

from branchwatch.broker import free_port
from branchwatch.contract import Event, Replay, decode_command, encode, topic_for

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str, *paths: str) -> str:
    """Path of a real binary; missing: a failure in CI (CI=true), a skip on a dev box."""
    found = shutil.which(name) or next((p for p in paths if os.access(p, os.X_OK)), None)
    if found:
        return found
    message = f"{name} is not installed (Debian package; `make deps` installs it as root)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message + " - not CI, so skipped")


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last_error})")


def run_cli(
    *args: str, module: str = "branchwatch", timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` to completion, output captured (a hang fails the test)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def rebuilt(samples: Samples) -> bool:
    """No branch is being rebuilt from its agents' replays: a collector with no seq of an
    agent holds its events until the agent's replay is in (collector/rebuild.py)."""
    return not any(v for k, v in samples.items() if k[0] == "branchwatch_branch_rebuilding")


class LoggedProcess:
    """One of our commands as a real subprocess, its output in ``log_path``."""

    log_tail = 6000

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: Sequence[str], cwd: Path | None = None) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-self.log_tail :]

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM; the process must exit within ``timeout``."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class CollectorProcess(LoggedProcess):
    """``branchwatch collector run`` as a real subprocess."""

    log_tail = 4000

    def __init__(
        self, broker_url: str, state_dir: Path, client_id: str, extra: Sequence[str] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [
            sys.executable, "-m", "branchwatch", "collector", "run",
            "--broker", broker_url, "--http", f"127.0.0.1:{self.port}",
            "--state-dir", str(state_dir), "--client-id", client_id, *extra,
        ]  # fmt: skip
        self.log_path = state_dir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 15.0) -> CollectorProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_until(lambda: self.get("/readyz")[0] == 200, ready_timeout, "collector /readyz")
        except AssertionError:
            self.kill()
            raise AssertionError(f"collector not ready; log:\n{self.log()}") from None
        return self

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> Samples:
        status, body = self.get("/metrics")
        assert status == 200, body
        return parse_metrics(body.decode())

    def api(self, path: str) -> Any:
        status, body = self.get("/api/v1" + path)
        assert status == 200, (status, body)
        return json.loads(body)


def mqtt_client(broker_port: int, client_id: str = "") -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    return client


class FakeAgent:
    """Publishes events as one agent would and answers ``replay`` from memory."""

    def __init__(self, broker_port: int, region: str, branch: str, agent: str) -> None:
        self.region, self.branch, self.agent = region, branch, agent
        self.topic = topic_for(region, branch, agent, "events")
        self.sent: list[Event] = []
        self.replays: list[int] = []
        self._lock = threading.Lock()
        self.client = mqtt_client(broker_port)
        self.client.on_message = self._command
        cmd = topic_for(region, branch, agent, "cmd")
        self.client.subscribe(cmd, qos=1)
        wait_until(self.client.is_connected, 5, "fake agent connected")

    def publish(self, events: Iterable[Event], batch: bool = False) -> None:
        events = list(events)
        with self._lock:
            self.sent.extend(events)
        chunks: list[Sequence[Event] | Event] = [events] if batch else list(events)
        for chunk in chunks:
            self.client.publish(self.topic, encode(chunk), qos=1).wait_for_publish(5)

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def _command(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        command = decode_command(message.payload)
        if isinstance(command, Replay):
            self.replays.append(command.from_seq)
            with self._lock:
                again = [e for e in self.sent if e.seq >= command.from_seq]
            for start in range(0, len(again), 500):
                client.publish(self.topic, encode(again[start : start + 500]), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
