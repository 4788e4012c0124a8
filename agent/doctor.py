"""``branchwatch agent doctor``: can this agent work here? A pass/fail table for installers.

Checks, in order: the config; the clock; the spool directory; each device
(opened for a few seconds: does its link come up, do frames parse); the
broker (TCP/TLS, credentials, then a QoS 1 probe). The probe goes to the
agent's own ``…/{agent}/doctor`` topic, inside the subtree its ACL allows,
never to ``status``: a collector subscribes to ``…/events`` and ``…/status``
only, so a doctor run cannot make an agent look online, offline or restarted.
The doctor also subscribes to ``…/cmd`` with a throw-away clean session under
its own client id (``{client_id}-doctor``), so it never takes over the
running agent's session, and checks it can read there with a round trip when
the broker lets it write there (normally only the collector may: then the
read is "not verifiable", since Mosquitto grants a SUBACK even where its ACL
forbids reading and then drops the messages silently). Exit 1 on any failed
check (a check that is not verifiable does not fail); a config that cannot be
used (bad key or value, unknown device protocol or option) is raised as a
ConfigError instead (no table: exit status 2 with the one-line reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from agent.config import AgentConfig, load_config
from agent.devices.base import DeviceConfig, DeviceKind, kind_for
from agent.devices.registry import DEVICE_KINDS
from agent.devices.testing import RecordingContext
from branchwatch.config import read_secret
from branchwatch.errors import BranchwatchError, ConfigError

EARLIEST_SANE: Final = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
LATEST_SANE: Final = 4_102_444_800.0  # the contract's bound on ts (2100-01-01)
BROKER_TIMEOUT: Final = 5.0
MIN_FREE_BYTES: Final = 100 * 1024 * 1024


@dataclass
class Check:
    name: str
    ok: bool | None  # None: could not be verified here (not a failure)
    detail: str


def run_doctor(
    config_path: str,
    device_seconds: float = 5.0,
    kinds: Mapping[str, DeviceKind] = DEVICE_KINDS,
    brokers: Sequence[str] = (),
) -> int:
    checks: list[Check] = []
    # A ConfigError is no check result: exit status 2.
    config = load_config(config_path, brokers)
    checks.append(
        Check("config", True, f"{config_path}: agent {config.region}/{config.branch}/"
              f"{config.agent}, {len(config.devices)} devices")
    )  # fmt: skip
    checks.append(check_clock(time.time()))
    checks.append(check_spool_dir(Path(config.spool.path)))
    checks.extend(asyncio.run(check_devices(config.devices, device_seconds, kinds)))
    checks.extend(check_broker(config))
    return report(checks)


RESULTS: Final = {True: "PASS", False: "FAIL", None: "WARN"}


def report(checks: list[Check]) -> int:
    width = max(len(check.name) for check in checks)
    print(f"{'CHECK'.ljust(width)}  RESULT  DETAIL")
    for check in checks:
        print(f"{check.name.ljust(width)}  {RESULTS[check.ok]:6}  {check.detail}")
    failed = [check.name for check in checks if check.ok is False]
    unsure = [check.name for check in checks if check.ok is None]
    passed = len(checks) - len(failed) - len(unsure)
    not_verified = f", {len(unsure)} not verifiable" if unsure else ""
    print(f"\n{passed} passed{not_verified}, {len(failed)} failed", end="")
    print(f": {', '.join(failed)}" if failed else " - this agent is ready to run")
    return 1 if failed else 0


def check_clock(now: float) -> Check:
    shown = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if not EARLIEST_SANE <= now < LATEST_SANE:
        return Check("clock", False, f"{shown}: not plausible; set the time (NTP: timedatectl)")
    return Check("clock", True, f"{shown} (compare with a watch: event times come from it)")


def check_spool_dir(spool_path: Path) -> Check:
    """Writable by whoever runs the doctor (run it as the service user); creates nothing."""
    directory = spool_path.parent
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check("spool directory", False, f"{directory}: {existing} is not a directory")
    if existing != directory:
        if not os.access(existing, os.W_OK | os.X_OK):
            hint = f"create it: install -d -o branchwatch -g branchwatch -m 750 {directory}"
            return Check("spool directory", False, f"{directory} does not exist; {hint}")
        return Check("spool directory", True, f"{directory} does not exist yet; can be created")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-") as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        return Check("spool directory", False, f"{directory}: not writable ({exc.strerror})")
    free = shutil.disk_usage(directory).free
    detail = f"{directory}: writable, {free / 2**30:.1f} GiB free"
    if free < MIN_FREE_BYTES:
        return Check("spool directory", False, detail + " (need at least 100 MiB)")
    return Check("spool directory", True, detail)


async def check_devices(
    devices: tuple[DeviceConfig, ...],
    seconds: float,
    kinds: Mapping[str, DeviceKind] = DEVICE_KINDS,
) -> list[Check]:
    return list(await asyncio.gather(*(_check_device(d, kinds, seconds) for d in devices)))


async def _check_device(
    config: DeviceConfig, kinds: Mapping[str, DeviceKind], seconds: float
) -> Check:
    name = f"device {config.id}"
    where = f"{config.protocol} {config.url}".strip()
    context = RecordingContext(config.id)  # the events are counted, never spooled
    try:
        device = kind_for(config, kinds)(config, context)
        task = asyncio.create_task(device.run())
        done, _ = await asyncio.wait([task], timeout=seconds)
        # The link as the running device reports it: stopping it below takes a server's
        # link down (the http kind), which says nothing about this machine.
        link_up = bool(context.link_up)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if done and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    except ConfigError:
        raise  # an unknown option, a missing setting: the config is wrong, not this machine
    except Exception as exc:  # whatever an adapter raises is the answer here
        return Check(name, False, f"{where}: {type(exc).__name__}: {exc}")
    describe = getattr(device, "describe_link", None)
    link = describe(link_up) if describe else f"link {'up' if link_up else 'down'}"
    events, bad = len(context.received), Counter(context.bad_reasons())
    detail = f"{where}: {link}, {events} events parsed, {bad.total()} bad frames in {seconds:g} s"
    if bad:
        detail += f" ({', '.join(f'{r}: {n}' for r, n in bad.most_common(3))})"
    if link_up and not events and not bad:
        detail += " (quiet: use the device, e.g. take a ticket, and run again)"
    # Events parsed prove the device works, whatever its link says now.
    return Check(name, (link_up or events > 0) and not (bad and not events), detail)


def check_broker(config: AgentConfig) -> list[Check]:
    """The probe against every listed broker: the agent may land on any of them."""
    mqtt = config.mqtt
    addresses = mqtt.broker_addresses()
    try:
        password = read_secret(mqtt.password_file, "MQTT password") if mqtt.password_file else None
        context = mqtt.tls_context()
    except BranchwatchError as exc:
        return [Check("broker", False, str(exc))]
    checks: list[Check] = []
    for number, address in enumerate(addresses, 1):
        found = _Probe(config, password, context).run(address.host, address.port, address.tls)
        if len(addresses) > 1:  # "broker 2 publish": which node of the list said so
            found = [
                replace(c, name=c.name.replace("broker", f"broker {number}", 1)) for c in found
            ]
        checks.extend(found)
    return checks


# A command the running agent may take without harm: a replay of nothing (no seq is this
# high). The doctor's token rides along as a field the agent ignores.
_CMD_PROBE_SEQ: Final = 2**63 - 1


class _Probe:
    """A short-lived paho client: connect, subscribe, publish probes, see them come back."""

    def __init__(self, config: AgentConfig, password: str | None, context: Any) -> None:
        self.config = config
        self.v5 = config.mqtt.protocol == "5"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{config.client_id}-doctor",
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else True,
        )
        if config.mqtt.username:
            self.client.username_pw_set(config.mqtt.username, password)
        if context is not None:
            self.client.tls_set_context(context)
        self.connected = threading.Event()
        self.connect_rc: Any = None
        self.subscribed = threading.Event()
        self.subscribe_rc: list[Any] = []
        # PUBACK reason codes by message id, and the topics a probe came back on.
        self.changed = threading.Condition()
        self.acks: dict[int, Any] = {}
        self.echoes: set[str] = set()
        self.token = f"doctor-{os.getpid()}-{time.time():.3f}"
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self.connect_rc = rc
        self.connected.set()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any = None) -> None:
        with self.changed:
            self.acks[mid] = rc
            self.changed.notify_all()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[Any], props: Any = None) -> None:
        self.subscribe_rc = rcs
        self.subscribed.set()

    def _on_message(self, c: Any, u: Any, message: paho.MQTTMessage) -> None:
        if self.token.encode() in message.payload:
            with self.changed:
                self.echoes.add(message.topic)
                self.changed.notify_all()

    def run(self, host: str, port: int, tls: bool) -> list[Check]:
        where = f"{'mqtts' if tls else 'mqtt'}://{host}:{port}"
        user = f" as {self.config.mqtt.username!r}" if self.config.mqtt.username else ""
        try:
            self.client.connect(host, port, keepalive=10)
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake
            return [Check("broker", False, f"{where}: cannot connect: {exc}")]
        self.client.loop_start()
        try:
            return self._checks(where, user)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _publish(self, topic: str, payload: bytes) -> tuple[Any, bool]:
        """Publish at QoS 1: (the PUBACK's reason code, or None without one; came back?)."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self.changed:
            self.changed.wait_for(lambda: mid in self.acks, BROKER_TIMEOUT)
            ack = self.acks.get(mid)
            if ack is None or getattr(ack, "is_failure", False):
                return ack, False
            return ack, self.changed.wait_for(lambda: topic in self.echoes, BROKER_TIMEOUT)

    def _checks(self, where: str, user: str) -> list[Check]:
        if not self.connected.wait(BROKER_TIMEOUT):
            return [Check("broker", False, f"{where}: no CONNACK within {BROKER_TIMEOUT:g} s")]
        if self.connect_rc.is_failure:
            reason = str(self.connect_rc).lower()
            hint = ""
            if "auth" in reason or "password" in reason:
                hint = " (check mqtt.username and the password file)"
            return [Check("broker", False, f"{where}: refused{user}: {self.connect_rc}{hint}")]
        checks = [Check("broker", True, f"{where}: connected{user}")]
        doctor, cmd = self.config.topic("doctor"), self.config.topic("cmd")
        self.client.subscribe([(doctor, 1), (cmd, 1)])
        subscribed = self.subscribed.wait(BROKER_TIMEOUT)
        refused = [str(rc) for rc in self.subscribe_rc if getattr(rc, "is_failure", False)]
        payload = msgspec.json.encode({"v": 1, "probe": self.token, "ts": time.time()})
        ack, echoed = self._publish(doctor, payload)
        if ack is None:
            checks.append(Check("broker publish", False, f"{doctor}: no PUBACK"))
        elif getattr(ack, "is_failure", False):
            checks.append(Check("broker publish", False, f"{doctor}: {ack} (ACL)"))
        elif not echoed:
            lost = f"{doctor}: acknowledged but never delivered back (ACL)"
            checks.append(Check("broker publish", False, lost))
        else:
            checks.append(Check("broker publish", True, f"QoS 1 probe on {doctor} round-tripped"))
        if not subscribed:
            checks.append(Check("broker read cmd", False, f"{cmd}: no SUBACK"))
        elif refused:
            checks.append(Check("broker read cmd", False, f"{cmd}: subscribe {', '.join(refused)}"))
        else:
            checks.append(self._read_cmd(cmd))
        return checks

    def _read_cmd(self, cmd: str) -> Check:
        """Can this user read its commands? A probe sent there must come back."""
        probe = {"v": 1, "type": "replay", "from_seq": _CMD_PROBE_SEQ, "probe": self.token}
        ack, echoed = self._publish(cmd, msgspec.json.encode(probe))
        if echoed:
            return Check("broker read cmd", True, f"{cmd}: a probe sent there came back")
        unsure = (
            f"{cmd}: SUBACK granted, reading not verifiable: the broker does not let this "
            "user write there to test it (as intended: only the collector sends commands), "
            "and Mosquitto grants a SUBACK where its ACL forbids reading too"
        )
        if ack is None or getattr(ack, "is_failure", False) or not self.v5:
            # MQTT 3.1.1 acknowledges a forbidden publish too: no echo proves nothing.
            return Check("broker read cmd", None, unsure)
        return Check(
            "broker read cmd",
            False,
            f"{cmd}: a probe the broker accepted never came back: this user cannot read "
            "its commands (ACL: `pattern read bw/v1/%u/cmd`)",
        )
