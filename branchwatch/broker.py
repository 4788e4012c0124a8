"""An MQTT broker on a free loopback port, for the demo and the test suite.

Mosquitto (Debian's package) is preferred: it is the real part. The demo
falls back to amqtt, a pure-Python broker (MQTT 3.1.1 only, ~3k msg/s), when
Mosquitto is not installed, so that it runs anywhere Python does. The test
suite asks for Mosquitto explicitly and fails when it is missing.

:func:`die_with_parent_hook` is also how the demo's other children go when the
demo is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal, Self

from branchwatch.errors import BranchwatchError
from branchwatch.lifecycle import StartedInWith

BrokerKind = Literal["mosquitto", "amqtt"]
MOSQUITTO_PATHS: Final = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_TIMEOUT: Final = 10.0
PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


class BrokerError(BranchwatchError):
    """The embedded broker could not be found or started."""


# Ports handed out for listeners we start: below the kernel's ephemeral range, so no
# outgoing connection (which takes its port from that range) can grab one between the
# choice and the bind. Between them another chooser can, rarely: a random pick keeps
# that unlikely when several test workers choose at once.
LISTEN_PORTS: Final = range(20_000, 32_000)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, outside the ephemeral range if possible."""
    candidates = range(LISTEN_PORTS.start, min(LISTEN_PORTS.stop, _ephemeral_low()))
    for port in random.sample(candidates, min(64, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))  # every pick taken: let the kernel choose
        chosen: int = sock.getsockname()[1]
        return chosen


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with code {proc.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"broker did not listen on {host}:{port} within {timeout:.0f} s")


def die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child get SIGTERM when this process dies, or None.

    Linux only (``prctl(PR_SET_PDEATHSIG)``, inherited across exec): it covers
    a parent killed with SIGKILL, which runs no cleanup. The signal comes when
    the *thread* that started the child ends, so start such children from a
    thread that lives as long as they should (the main thread).
    """
    if sys.platform != "linux":
        return None
    parent = os.getpid()

    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the prctl took hold
            os._exit(1)

    return hook


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout``; reaped either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class EmbeddedBroker(StartedInWith):
    """A broker subprocess on ``host:port`` (a free port by default).

    ``persistent=True`` keeps sessions and queued QoS 1 messages across
    :meth:`restart`, as a production Mosquitto with persistence does.
    """

    def __init__(
        self,
        kind: BrokerKind | Literal["auto"] = "auto",
        host: str = "127.0.0.1",
        port: int = 0,
        persistent: bool = True,
        workdir: Path | None = None,
        extra_config: Sequence[str] = (),
        die_with_parent: bool = False,
    ) -> None:
        self.host = host
        # SIGTERM to the broker if this process is killed outright (see die_with_parent_hook).
        self.die_with_parent = die_with_parent
        # More mosquitto.conf lines, e.g. a TLS listener or a password file (tests, doctor).
        self.extra_config = tuple(extra_config)
        self.port = port or free_port(host)
        self.persistent = persistent
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="branchwatch-broker-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.kind = self._choose(kind)
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _choose(kind: BrokerKind | Literal["auto"]) -> BrokerKind:
        if kind in ("auto", "mosquitto") and find_mosquitto():
            return "mosquitto"
        if kind == "mosquitto":
            raise BrokerError(
                "mosquitto is not installed (Debian: apt-get install mosquitto; `make deps`)"
            )
        return "amqtt"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def mqtt_protocol(self) -> str:
        """The newest protocol this broker speaks ("5" or "3.1.1")."""
        return "5" if self.kind == "mosquitto" else "3.1.1"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    def start(self) -> Self:
        if self._proc is not None and self._proc.poll() is None:
            return self
        argv = self._mosquitto_argv() if self.kind == "mosquitto" else self._amqtt_argv()
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(  # noqa: S603 - argv is built here, not from input
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent_hook() if self.die_with_parent else None,  # noqa: PLW1509
        )
        log.close()
        try:
            wait_for_port(self.host, self.port, START_TIMEOUT, self._proc)
        except BrokerError as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise BrokerError(f"{exc}; {self.kind} log:\n{tail}") from exc
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        terminate(proc, timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _mosquitto_argv(self) -> list[str]:
        binary = find_mosquitto()
        if binary is None:  # pragma: no cover - checked in _choose
            raise BrokerError("mosquitto is not installed")
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            # Queue enough QoS 1 messages for a disconnected persistent session
            # (a collector restart) instead of dropping them at the default 1000.
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            "max_packet_size 1048576",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto would switch to its own user and could then
            # neither write our private workdir (persistence) nor read test certificates.
            lines.append("user root")
        if self.persistent:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        lines += self.extra_config
        conf.write_text("\n".join(lines) + "\n")
        return [binary, "-c", str(conf)]

    def _amqtt_argv(self) -> list[str]:
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n"
            "  default:\n"
            "    type: tcp\n"
            f"    bind: {self.host}:{self.port}\n"
            "plugins:\n"
            "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
            "    allow_anonymous: true\n"
        )
        script = Path(sys.executable).with_name("amqtt")
        if not script.exists():
            raise BrokerError(
                "no broker available: install mosquitto (apt-get install mosquitto) "
                "or the demo extra (pip install 'branchwatch[demo]')"
            )
        return [str(script), "-c", str(conf)]
