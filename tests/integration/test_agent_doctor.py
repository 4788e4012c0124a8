"""``branchwatch agent doctor`` against a Mosquitto secured like production.

The broker uses the shipped ACL template (deploy/mosquitto/acl) and a password
file made with ``mosquitto_passwd -b``, so these tests also prove the template
pins an agent to its own subtree and lets the collector do its job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker, free_port, wait_for_port
from tests.integration.test_agent_fakes import (
    AGENT,
    BRANCH,
    REGION,
    REPO,
    AgentProcess,
    agent_toml,
    burst_device,
)
from tests.integration.test_collector_tls import make_certificates
from tests.support import CollectorProcess, require_binary, sample, wait_until

pytestmark = pytest.mark.integration

USER = f"{REGION}/{BRANCH}/{AGENT}"
PASSWORDS = {
    USER: "agent-secret",
    f"{REGION}/{BRANCH}/agent-2": "other-secret",
    "collector": "c-secret",
}


SHIPPED_ACL = (REPO / "deploy" / "mosquitto" / "acl").read_text()


@contextlib.contextmanager
def broker_with_acl(tmp_path: Path, acl_text: str) -> Iterator[EmbeddedBroker]:
    """A Mosquitto with the password file of PASSWORDS and this ACL."""
    passwd_tool = require_binary("mosquitto_passwd")
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    acl = tmp_path / "acl"
    acl.write_text(acl_text)
    extra = ["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"]
    with EmbeddedBroker("mosquitto", extra_config=extra) as broker:
        yield broker


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with broker_with_acl(tmp_path, SHIPPED_ACL) as broker:
        yield broker


def secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def doctor(
    tmp_path: Path,
    broker_url: str,
    password: str,
    spool: str = "",
    user: str = USER,
    agent: str = AGENT,
    devices: str = "",
    protocol: str = "5",
) -> tuple[int, str]:
    workdir = tmp_path / "doctor"
    workdir.mkdir(exist_ok=True)
    mqtt = (
        f'username = "{user}"\npassword_file = "{secret(tmp_path, "pw", password)}"\n'
        f'protocol = "{protocol}"\n'
    )
    config = agent_toml(
        broker_url, spool or str(workdir / "spool" / "spool.db"), devices or burst_device(3), mqtt
    ).replace(f'agent = "{AGENT}"', f'agent = "{agent}"')
    process = AgentProcess(workdir, config).start("doctor", "--device-seconds", "0.5")
    assert process.proc is not None
    code = process.proc.wait(30)
    return code, process.log()


def row(output: str, check: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(check + " "))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_good_setup_passes(secured: EmbeddedBroker, tmp_path: Path, protocol: str) -> None:
    code, output = doctor(tmp_path, secured.url, PASSWORDS[USER], protocol=protocol)
    assert code == 0, output
    for check in ("config", "clock", "spool directory", "device queue-1", "broker",
                  "broker publish"):  # fmt: skip
        assert " PASS " in row(output, check), output
    # The shipped ACL lets only the collector write cmd: the read cannot be tried.
    assert " WARN " in row(output, "broker read cmd") and "not verifiable" in output, output
    assert "granted" not in row(output, "broker read cmd").split("SUBACK granted", 1)[1]
    assert "6 passed, 1 not verifiable, 0 failed - this agent is ready to run" in output
    assert PASSWORDS[USER] not in output


def test_read_access_to_cmd_is_verified_where_the_agent_may_write_there(
    mosquitto: EmbeddedBroker, tmp_path: Path
) -> None:
    """A broker without an ACL: the probe sent to cmd comes back, so reading works."""
    code, output = doctor(tmp_path, mosquitto.url, PASSWORDS[USER])
    assert code == 0, output
    assert "PASS    bw/v1/north/b0001/agent-1/cmd: a probe sent there came back" in row(
        output, "broker read cmd"
    ), output


# The shipped template, but this agent may not read its commands.
NO_CMD_READ = SHIPPED_ACL.replace("pattern read bw/v1/%u/cmd\n", "")
# ... and may write them (a broken ACL that makes the read testable).
CMD_WRITE_ONLY = SHIPPED_ACL.replace("pattern read bw/v1/%u/cmd\n", "pattern write bw/v1/%u/cmd\n")


@pytest.mark.parametrize(
    ("acl", "protocol", "code", "result"),
    [
        # Mosquitto grants the SUBACK anyway: the doctor no longer says "granted".
        (NO_CMD_READ, "5", 0, "WARN"),
        (NO_CMD_READ, "3.1.1", 0, "WARN"),
        # It may write there, so the lost probe proves it cannot read (MQTT 5's PUBACK
        # says the write was allowed; MQTT 3.1.1 acknowledges a forbidden one too).
        (CMD_WRITE_ONLY, "5", 1, "FAIL"),
        (CMD_WRITE_ONLY, "3.1.1", 0, "WARN"),
    ],
)
def test_an_acl_that_forbids_reading_cmd_is_never_passed(
    tmp_path: Path, acl: str, protocol: str, code: int, result: str
) -> None:
    assert "pattern read bw/v1/%u/cmd" not in acl
    with broker_with_acl(tmp_path, acl) as broker:
        got, output = doctor(tmp_path, broker.url, PASSWORDS[USER], protocol=protocol)
    assert got == code, output
    line = row(output, "broker read cmd")
    assert f" {result} " in line, output
    if result == "FAIL":
        assert "cannot read its commands" in line
        assert "1 failed: broker read cmd" in output


def test_the_sample_configs_http_device_passes(secured: EmbeddedBroker, tmp_path: Path) -> None:
    """deploy/agent.toml's http device, on a free port: listening is a working link."""
    sample = (REPO / "deploy" / "agent.toml").read_text()
    http = sample[sample.index('[[devices]]\nid = "qms-http"') :]
    port = free_port()
    http = http.replace("127.0.0.1:8088", f"127.0.0.1:{port}").replace(
        "/etc/branchwatch/http.token", str(secret(tmp_path, "http.token", "s3cret"))
    )
    code, output = doctor(tmp_path, secured.url, PASSWORDS[USER], devices=http)
    assert code == 0, output
    assert f"PASS    http 127.0.0.1:{port}: listening on 127.0.0.1:{port}" in row(
        output, "device qms-http"
    ), output
    assert "ready to run" in output


def test_wrong_port_fails(secured: EmbeddedBroker, tmp_path: Path) -> None:
    code, output = doctor(tmp_path, f"mqtt://127.0.0.1:{free_port()}", PASSWORDS[USER])
    assert code == 1
    assert "FAIL" in row(output, "broker") and "cannot connect" in row(output, "broker")


def test_bad_password_fails(secured: EmbeddedBroker, tmp_path: Path) -> None:
    code, output = doctor(tmp_path, secured.url, "wrong-password")
    assert code == 1
    assert "FAIL" in row(output, "broker") and "refused" in row(output, "broker"), output
    assert "wrong-password" not in output


def test_another_agents_subtree_is_refused_by_the_acl(
    secured: EmbeddedBroker, tmp_path: Path
) -> None:
    # Logged in as agent-1 but configured as agent-2: the ACL keeps it out.
    code, output = doctor(tmp_path, secured.url, PASSWORDS[USER], agent="agent-2")
    assert code == 1
    assert "FAIL" in row(output, "broker publish"), output


def test_agent_refused_by_the_acl_keeps_its_events(secured: EmbeddedBroker, tmp_path: Path) -> None:
    """MQTT 5: the broker's "not authorized" PUBACK leaves events in the spool, backoff grows."""
    workdir = tmp_path / "agent"
    workdir.mkdir()
    mqtt = f'username = "{USER}"\npassword_file = "{secret(tmp_path, "a.pw", PASSWORDS[USER])}"\n'
    config = agent_toml(secured.url, str(workdir / "spool.db"), burst_device(5), mqtt)
    agent = AgentProcess(workdir, config.replace(f'agent = "{AGENT}"', 'agent = "agent-2"'))
    agent.start()
    try:
        wait_until(lambda: agent.log().count("Not authorized") >= 3, 10, "refusals logged")
        assert agent.spooled()[1] == 5  # nothing marked sent
        assert "retrying in 0.8 s" in agent.log()  # backing off, not hammering
        assert agent.stop() == 0
    finally:
        agent.kill()


def test_unwritable_spool_directory_fails(secured: EmbeddedBroker, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    code, output = doctor(tmp_path, secured.url, PASSWORDS[USER], spool=str(blocker / "spool.db"))
    assert code == 1
    assert "FAIL" in row(output, "spool directory"), output


def test_agent_and_collector_through_the_acl(secured: EmbeddedBroker, tmp_path: Path) -> None:
    """The template lets the agent publish and the collector read and send replays."""
    state = tmp_path / "collector"
    state.mkdir()
    collector_config = tmp_path / "collector.toml"
    pw = secret(tmp_path, "collector.pw", PASSWORDS["collector"])
    collector_config.write_text(f'[mqtt]\nusername = "collector"\npassword_file = "{pw}"\n')
    collector = CollectorProcess(secured.url, state, "collector",
                                 extra=["--config", str(collector_config)]).start()  # fmt: skip
    workdir = tmp_path / "agent"
    workdir.mkdir()
    mqtt = f'username = "{USER}"\npassword_file = "{secret(tmp_path, "a.pw", PASSWORDS[USER])}"\n'
    agent = AgentProcess(
        workdir, agent_toml(secured.url, str(workdir / "s.db"), burst_device(50), mqtt)
    )
    agent.start()
    try:
        labels = {"region": REGION, "branch": BRANCH, "service": "cash"}
        wait_until(
            lambda: sample(collector.metrics(), "branchwatch_tickets_issued_total", **labels) == 50,
            15,
            "events through the ACL",
        )
        assert agent.spooled()[1] == 0
        assert agent.stop() == 0
        assert PASSWORDS[USER] not in agent.log()  # not even at debug level
    finally:
        agent.kill()
        collector.kill()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Mosquitto with a TLS listener; (its mqtts:// URL, the CA that signed it)."""
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    listener = [f"listener {port} 127.0.0.1", f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    with EmbeddedBroker("mosquitto", extra_config=listener):
        yield f"mqtts://127.0.0.1:{port}", ca


def test_tls_doctor_and_run(tls_broker: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = tls_broker
    workdir = tmp_path / "tls"
    workdir.mkdir()
    spool = str(workdir / "spool.db")
    trusted = AgentProcess(workdir, agent_toml(url, spool, burst_device(5), f'ca_file = "{ca}"\n'))
    trusted.start("doctor", "--device-seconds", "0.3")
    assert trusted.proc is not None
    assert trusted.proc.wait(30) == 0, trusted.log()
    trusted.start()
    try:
        wait_until(lambda: trusted.spooled()[:2] == (5, 0), 15, "events sent over TLS")
        assert trusted.stop() == 0
    finally:
        trusted.kill()
    (workdir / "agent.log").unlink()
    untrusted = AgentProcess(workdir, agent_toml(url, spool, burst_device(5)))
    untrusted.start("doctor", "--device-seconds", "0.3")
    assert untrusted.proc is not None
    assert untrusted.proc.wait(30) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in row(untrusted.log(), "broker")


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """deploy/mosquitto/branchwatch.conf as installed: under a Debian-style main file,
    with test certificates, a password file and the ACL template; (URL, CA)."""
    mosquitto = require_binary("mosquitto", "/usr/sbin/mosquitto")
    passwd_tool = require_binary("mosquitto_passwd")
    etc = tmp_path / "etc-mosquitto"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "certs").mkdir()
    ca, cert, key = make_certificates(etc / "certs")
    shutil.copy(cert, etc / "certs" / "broker.crt")
    shutil.copy(key, etc / "certs" / "broker.key")
    shutil.copy(ca, etc / "certs" / "ca.crt")
    shutil.copy(REPO / "deploy" / "mosquitto" / "acl", etc / "branchwatch.acl")
    passwd = etc / "branchwatch.passwd"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():  # every user (test_broker_acl.py needs them all)
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    port = free_port()
    shipped = (REPO / "deploy" / "mosquitto" / "branchwatch.conf").read_text()
    shipped = shipped.replace("/etc/mosquitto/", f"{etc}/").replace(
        "listener 8883", f"listener {port}"
    )
    (etc / "conf.d" / "branchwatch.conf").write_text(shipped)
    main = [  # Debian's /etc/mosquitto/mosquitto.conf, paths moved
        "persistence true", f"persistence_location {tmp_path}/", "log_dest stdout",
        f"include_dir {etc}/conf.d",
    ] + (["user root"] if os.geteuid() == 0 else [])  # fmt: skip
    (etc / "mosquitto.conf").write_text("\n".join(main) + "\n")
    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen([mosquitto, "-c", str(etc / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        wait_for_port("127.0.0.1", port, 10, proc)
        yield f"mqtts://127.0.0.1:{port}", ca
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


def test_shipped_broker_config_with_tls_passwords_and_acl(
    shipped_broker: tuple[str, Path], tmp_path: Path
) -> None:
    url, ca = shipped_broker
    workdir = tmp_path / "agent"
    workdir.mkdir()
    mqtt = (
        f'username = "{USER}"\npassword_file = "{secret(tmp_path, "pw", PASSWORDS[USER])}"\n'
        f'ca_file = "{ca}"\n'
    )
    agent = AgentProcess(workdir, agent_toml(url, str(workdir / "spool.db"), burst_device(3), mqtt))
    agent.start("doctor", "--device-seconds", "0.3")
    assert agent.proc is not None
    assert agent.proc.wait(30) == 0, agent.log()
