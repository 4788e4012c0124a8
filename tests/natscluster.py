"""A NATS cluster with MQTT for the tests: the shipped deploy/nats kit on free loopback ports.

The kit's files are copied to a work directory, users are added with its own
``add-user.sh``, and every node runs the unchanged ``branchwatch.conf`` with its
ports and JetStream directory in the environment, as the systemd unit gives them.
Never the system's NATS server (127.0.0.1:4222): every port here is a free one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from branchwatch.broker import free_port
from tests.support import require_binary, wait_until

KIT: Final = Path(__file__).resolve().parents[1] / "deploy" / "nats"
KIT_FILES: Final = ("branchwatch.conf", "accounts.conf", "users.conf", "add-user.sh")
NATS_PATHS: Final = ("/usr/sbin/nats-server", "/usr/bin/nats-server")
START_TIMEOUT: Final = 30.0  # a node answers /healthz and takes an MQTT session


@dataclass
class NatsNode:
    name: str
    store: Path
    log: Path
    client_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    """``size`` nodes of one cluster; users first (:meth:`add_agent`), then :meth:`start`."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.binary = require_binary("nats-server", *NATS_PATHS)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        for name in KIT_FILES:
            shutil.copy2(KIT / name, workdir / name)
        self.nodes = [
            NatsNode(f"mq{i}", workdir / f"mq{i}-store", workdir / f"mq{i}.log")
            for i in range(1, size + 1)
        ]
        self.passwords: dict[str, Path] = {}

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    # users ------------------------------------------------------------------------------

    def add_agent(self, region: str, branch: str, agent: str) -> Path:
        """The agent's user ``region/branch/agent``; returns its password file."""
        return self._add_user(f"{region}/{branch}/{agent}", "agent", region, branch, agent)

    def add_collector(self, name: str, region: str | None = None) -> Path:
        return self._add_user(name, "collector", name, *([region] if region else []))

    def _add_user(self, user: str, *args: str) -> Path:
        hasher = Path(sys.executable).with_name("branchwatch")
        env = {**os.environ, "BCRYPT_COST": "4", "BRANCHWATCH": str(hasher)}
        done = subprocess.run(
            ["sh", "./add-user.sh", *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        path = self.workdir / (user.replace("/", "-") + ".password")
        self.passwords[user] = path
        return path

    # nodes ------------------------------------------------------------------------------

    def start(self) -> NatsCluster:
        for index in range(len(self.nodes)):
            self.start_node(index, wait=False)
        for index in range(len(self.nodes)):
            self.wait_ready(index)
        return self

    def start_node(self, index: int, wait: bool = True) -> None:
        node = self.nodes[index]
        routes = ", ".join(f"nats://127.0.0.1:{n.cluster_port}" for n in self.nodes)
        env = {
            **os.environ,
            "BW_NATS_NAME": node.name,
            "BW_NATS_LISTEN": f"127.0.0.1:{node.client_port}",
            "BW_NATS_HTTP": f"127.0.0.1:{node.http_port}",
            "BW_NATS_MQTT_LISTEN": f"127.0.0.1:{node.mqtt_port}",
            "BW_NATS_CLUSTER_LISTEN": f"127.0.0.1:{node.cluster_port}",
            "BW_NATS_ROUTES": f"[{routes}]",
            "BW_NATS_STORE": str(node.store),
        }
        argv = [self.binary, "-c", str(self.workdir / "branchwatch.conf"), "-l", str(node.log)]
        node.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        if wait:
            self.wait_ready(index)

    def wait_ready(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """/healthz says ok and an MQTT client is accepted (JetStream holds sessions)."""
        node = self.nodes[index]

        def healthy() -> bool:
            assert node.running, f"{node.name} exited:\n{self.log(index)}"
            # The full /healthz also waits for every JetStream asset to be current, which after
            # a crash can take minutes; the server itself is ready before that.
            url = f"http://127.0.0.1:{node.http_port}/healthz?js-server-only=true"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        try:
            wait_until(healthy, timeout, f"{node.name} /healthz")
            wait_until(lambda: self.accepts_mqtt(index), timeout, f"{node.name} MQTT")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{node.name} log:\n{self.log(index)}") from None

    def accepts_mqtt(self, index: int, timeout: float = 5.0) -> bool:
        """A throw-away clean session of the first user gets a successful CONNACK."""
        user, password_file = next(iter(self.passwords.items()))
        port = self.nodes[index].mqtt_port
        try:
            with mqtt_session(port, user, password_file, f"probe-{index}") as client:
                return bool(wait_until(client.is_connected, timeout, "CONNACK"))
        except (OSError, AssertionError):  # not listening yet; no CONNACK in time
            return False

    def stop(self, index: int) -> None:
        """SIGTERM, as ``systemctl stop`` does: the node hands its leaderships over first."""
        node = self.nodes[index]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.terminate()
            node.proc.wait(30)
        node.proc = None

    def leaderships(self, index: int) -> list[str]:
        """The JetStream streams and consumers (and the meta group) led by node ``index``;
        each consumer followed by what it delivers: the last token of its filter subject
        (events, status, cmd…).

        Their Raft groups elect a new leader when it dies: 4-9 s in NATS 2.9.
        """
        name = self.nodes[index].name
        for other, node in enumerate(self.nodes):
            if other == index or not node.running:
                continue
            query = "accounts=true&streams=true&consumers=true&config=true"
            url = f"http://127.0.0.1:{node.http_port}/jsz?{query}"
            with urllib.request.urlopen(url, timeout=5) as response:
                report = json.load(response)
            held = ["meta"] if report.get("meta_cluster", {}).get("leader") == name else []
            for account in report.get("account_details", []):
                for stream in account.get("stream_detail", []):
                    if stream.get("cluster", {}).get("leader") == name:
                        held.append(stream["name"])
                    for consumer in stream.get("consumer_detail") or []:
                        if consumer.get("cluster", {}).get("leader") == name:
                            subject = consumer.get("config", {}).get("filter_subject", "")
                            kind = subject.split(".")[-1]
                            held.append(f"{stream['name']} consumer {consumer['name']} {kind}")
            return held
        return []

    def kill(self, index: int) -> None:
        """SIGKILL: the node dies as a crashed machine's would, without a goodbye."""
        node = self.nodes[index]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(10)
        node.proc = None

    def log(self, index: int, tail: int = 3000) -> str:
        path = self.nodes[index].log
        return path.read_text(errors="replace")[-tail:] if path.exists() else "(no log)"

    def close(self) -> None:
        for index, node in enumerate(self.nodes):
            if node.running:
                assert node.proc is not None
                node.proc.terminate()
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.kill(index)
            node.proc = None


@contextmanager
def mqtt_session(
    port: int, user: str, password_file: Path, client_id: str, clean: bool = True
) -> Iterator[paho.Client]:
    """A paho MQTT 3.1.1 client (NATS speaks no MQTT 5) logged in as ``user``, looping."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv311,
        clean_session=clean,
    )
    client.username_pw_set(user, password_file.read_text().strip())
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()
