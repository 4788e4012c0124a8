"""Every command, given a bad flag or config: exit status 2, one ``error:`` line, no traceback.

Exit status 2 is what the systemd units' ``RestartPreventExitStatus=2`` relies on:
a typo is reported once instead of restarting every 5 s. No broker is started:
a config error must be found before anything is contacted (a command that
reaches the network first hangs on the closed broker port and times out here).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from tests.support import run_cli

pytestmark = pytest.mark.integration

# Nothing listens there: reaching the broker is the bug these tests would catch.
CLOSED_BROKER: Final = "mqtt://127.0.0.1:9"
ERROR_LINE: Final = re.compile(r"^(branchwatch|python -m agent\.emulators)[\w -]*: error: ")


def agent_toml(
    top: str = 'region = "north"', mqtt: str = "", spool: str = "", devices: str = ""
) -> str:
    """An agent config spooling under {dir}; each part replaces or extends one section."""
    return (
        f'{top}\nbranch = "b0001"\nagent = "agent-1"\n'
        f'[mqtt]\nbroker = "{CLOSED_BROKER}"\n{mqtt}\n'
        f'[spool]\npath = "{{dir}}/spool.db"\n{spool}\n{devices}'
    )


def device(protocol: str, url: str = "loop://", options: str = "{}") -> str:
    return f'[[devices]]\nid = "d1"\nprotocol = "{protocol}"\nurl = "{url}"\noptions = {options}\n'


@dataclass(frozen=True)
class Case:
    command: str  # as typed after `branchwatch` (or the emulators' module)
    case: str
    args: tuple[str, ...]  # "{dir}" is the test's own directory
    expect: str  # in the error line
    files: dict[str, str] = field(default_factory=dict)  # name -> text, written to {dir}

    @property
    def module(self) -> str:
        return "agent.emulators" if self.command == "emulators" else "branchwatch"


AGENT_CONFIGS: Final = [
    ("unknown key", agent_toml(top='region = "north"\ncolour = "blue"'), "unknown field `colour`"),
    ("invalid value", agent_toml(top='region = "North"'), "region"),
    ("invalid value (spool)", agent_toml(spool="max_events = 10"), "spool.max_events"),
    ("not TOML", "region = [\n", "not valid TOML"),
    ("device: unknown option", agent_toml(devices=device("queue-line", options="{ colour = 1 }")),
     "unknown options ['colour']"),
    ("device: unavailable protocol", agent_toml(devices=device("queue_line")), "'queue_line'"),
    ("device: missing option", agent_toml(devices=device("evaluator-frame")),
     "set option 'counter' or 'pads'"),
    ("device: bad option type", agent_toml(devices=device("sim", options="{ start_hour = 'x' }")),
     "start_hour"),
    ("device: bad url", agent_toml(devices=device("queue-line", url="ftp://host/x")),
     "unknown scheme"),
    ("device: missing token file",
     agent_toml(devices=device("http", "127.0.0.1:0", "{ token_file = '{dir}/none' }")),
     "token_file"),
]  # fmt: skip

COLLECTOR_CONFIGS: Final = [
    ("unknown key", "[mqtt]\nbrokr = 'x'\n", "unknown field `brokr`"),
    ("invalid value", "[mqtt]\nkeepalive_seconds = 'ten'\n", "mqtt.keepalive_seconds"),
    ("invalid value (floor)", "[floor]\nrequired_posts = [1, 9]\n", "floor.required_posts"),
    ("invalid value (service)", "[floor]\nservices = ['Cash']\n", "Cash"),
    ("invalid value (state)", "[state]\nsnapshot_interval_seconds = -1.0\n", "snapshot_interval"),
    ("not TOML", "not toml at all [", "not valid TOML"),
    ("missing password file",
     "[mqtt]\nusername = 'c'\npassword_file = '{dir}/none'\n", "MQTT password file"),
    ("missing CA file",
     "[mqtt]\nbroker = 'mqtts://127.0.0.1:9'\nca_file = '{dir}/none.pem'\n", "none.pem"),
    ("http: TLS half-configured", "[http]\ntls_key_file = '{dir}/none.key'\n", "go together"),
    ("http: missing certificate",
     "[http]\ntls_cert_file = '{dir}/none.pem'\ntls_key_file = '{dir}/none.key'\n",
     "http.tls_cert_file {dir}/none.pem: cannot read the server certificate"),
    ("http: not a bcrypt hash", "[http.basic_auth_users]\nprometheus = 'secret'\n",
     "http.basic_auth_users.prometheus: not a bcrypt hash"),
]  # fmt: skip


def _config_cases() -> list[Case]:
    cases = []
    for command in ("agent run", "agent doctor"):
        extra = ("--device-seconds", "0.1") if command == "agent doctor" else ()
        for name, text, expect in AGENT_CONFIGS:
            args = (*command.split(), "--config", "{dir}/agent.toml", *extra)
            cases.append(Case(command, name, args, expect, {"agent.toml": text}))
        args = (*command.split(), "--config", "{dir}/nope.toml", *extra)
        cases.append(Case(command, "missing file", args, "cannot read config {dir}/nope.toml"))
    # A password file is the broker check's business in the doctor (a FAIL row, exit 1).
    text = agent_toml(mqtt='username = "u"\npassword_file = "{dir}/none"')
    args = ("agent", "run", "--config", "{dir}/agent.toml")
    cases.append(Case("agent run", "missing password file", args, "MQTT password file",
                      {"agent.toml": text}))  # fmt: skip
    # No --broker: the flag would override the file's (the TLS case has its own).
    run = ("collector", "run", "--http", "127.0.0.1:0")
    for name, text, expect in COLLECTOR_CONFIGS:
        files = {"collector.toml": text}
        cases.append(Case("collector run", name, (*run, "--config", "{dir}/collector.toml"),
                          expect, files))  # fmt: skip
    cases.append(Case("collector run", "missing file", (*run, "--config", "{dir}/nope.toml"),
                      "cannot read config {dir}/nope.toml"))  # fmt: skip
    return cases


FLAG_CASES: Final = [
    Case("collector run", "--broker scheme", ("collector", "run", "--broker", "http://h:1883"),
         "mqtt:// or mqtts://"),
    Case("collector run", "--broker credentials",
         ("collector", "run", "--broker", "mqtt://user:secret@h"), "password file"),
    Case("collector run", "--http", ("collector", "run", "--http", "nohostport"), "HOST:PORT"),
    Case("collector run", "--region", ("collector", "run", "--region", "North"),
         "not a valid region id"),
    Case("collector run", "--mqtt-protocol", ("collector", "run", "--mqtt-protocol", "4"),
         "invalid choice: '4'"),
    Case("collector run", "--state-dir unusable",
         ("collector", "run", "--http", "127.0.0.1:0", "--broker", CLOSED_BROKER,
          "--state-dir", "{dir}/file/state"), "state dir {dir}/file/state",
         {"file": "not a directory"}),
    Case("collector hash-password", "--cost", ("collector", "hash-password", "--cost", "3"),
         "--cost"),
    Case("agent run", "--config missing", ("agent", "run"), "--config"),
    Case("agent doctor", "--device-seconds", ("agent", "doctor", "--config", "x",
                                              "--device-seconds", "soon"), "--device-seconds"),
    Case("simulate", "--speed", ("simulate", "--speed", "0"), "speed"),
    Case("simulate", "--broker", ("simulate", "--broker", "http://h"), "mqtt:// or mqtts://"),
    Case("simulate", "--regions", ("simulate", "--regions", "North"), "North"),
    Case("simulate", "--ca-file missing",
         ("simulate", "--broker", "mqtts://127.0.0.1:9", "--ca-file", "{dir}/none.pem",
          "--duration", "5"), "{dir}/none.pem"),
    Case("demo", "--speed", ("demo", "--speed", "-1"), "speed"),
    Case("demo", "--http-port", ("demo", "--http-port", "70000"), "HTTP port"),
    Case("grafana build", "--out is a file", ("grafana", "build", "--out", "{dir}/file"),
         "{dir}/file", {"file": "not a directory"}),
    Case("grafana build", "--out unwritable", ("grafana", "build", "--out", "/proc/branchwatch"),
         "/proc/branchwatch"),
    Case("grafana push", "--token-file missing",
         ("grafana", "push", "--url", "http://127.0.0.1:9", "--token-file", "{dir}/none"),
         "Grafana token file {dir}/none"),
    Case("grafana push", "--url", ("grafana", "push", "--url", "ftp:/x", "--token-file",
                                   "{dir}/token"), "ftp:/x", {"token": "t0ken"}),
    Case("grafana push", "--timeout", ("grafana", "push", "--url", "http://127.0.0.1:9",
                                       "--token-file", "{dir}/token", "--timeout", "soon"),
         "--timeout", {"token": "t0ken"}),
    Case("emulators", "--script missing",
         ("queue-line", "--tcp", "0", "--script", "{dir}/none.txt"), "cannot read {dir}/none.txt"),
    Case("emulators", "--script bad line",
         ("evaluator-frame", "--tcp", "0", "--script", "{dir}/script.txt"), "line 2",
         {"script.txt": "# a pad\nrate one 4\n"}),
    Case("emulators", "--tcp", ("queue-line", "--tcp", "any"), "--tcp"),
    Case("emulators", "unknown protocol", ("modbus", "--tcp", "0"), "modbus"),
    Case("report", "--date", ("report", "--prometheus", "http://127.0.0.1:9", "--period", "day",
                              "--date", "2025-02-30"), "2025-02-30"),
    Case("report", "--timezone", ("report", "--prometheus", "http://127.0.0.1:9", "--period",
                                  "week", "--timezone", "Mars/Olympus"), "Mars/Olympus"),
]  # fmt: skip

CASES: Final = [*_config_cases(), *FLAG_CASES]


def run_case(case: Case, directory: Path) -> tuple[int, str]:
    """Write the case's files, run it; (exit status, stderr) with {dir} spelled out."""
    for name, text in case.files.items():
        (directory / name).write_text(text.replace("{dir}", str(directory)))
    args = [arg.replace("{dir}", str(directory)) for arg in case.args]
    result = run_cli(*args, module=case.module, timeout=20)
    return result.returncode, result.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.command}: {c.case}")
def test_bad_flag_or_config_exits_2_with_one_error_line(case: Case, tmp_path: Path) -> None:
    status, stderr = run_case(case, tmp_path)
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    assert ERROR_LINE.match(errors[0]), errors[0]
    assert case.expect.replace("{dir}", str(tmp_path)) in errors[0]
    assert "secret" not in stderr  # a password on the command line is never echoed
    assert status == 2, stderr


def test_every_command_is_covered() -> None:
    from branchwatch.cli import COMMANDS  # noqa: PLC0415 - the table under test

    covered = {case.command.split()[0] for case in CASES}
    assert covered == {*COMMANDS, "emulators"}
    assert {c.command for c in CASES} >= {"agent run", "agent doctor", "grafana build",
                                          "grafana push", "collector run"}  # fmt: skip


def test_a_failure_while_running_exits_1(tmp_path: Path) -> None:
    """The spool cannot be created (no disk there): not a config error, systemd may retry."""
    config = tmp_path / "agent.toml"
    config.write_text(agent_toml().replace("{dir}", "/proc/branchwatch"))
    result = run_cli("agent", "run", "--config", str(config), timeout=20)
    assert result.returncode == 1, result.stderr
    assert "branchwatch: error: cannot create spool /proc/branchwatch/spool.db" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    """SIGINT while `grafana push` waits for a Grafana that accepted and never answers."""
    token = tmp_path / "token"
    token.write_text("t0ken")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(20)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        argv = ["grafana", "push", "--url", url, "--token-file", str(token), "--timeout", "60"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "branchwatch", *argv], stderr=subprocess.PIPE, text=True
        )
        try:
            connection, _ = silent.accept()  # the request is on its way: interrupt the wait
            with connection:
                proc.send_signal(signal.SIGINT)
                _, stderr = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "bad command line or configuration"),
        (("agent", "run"), "spool"),
        (("agent", "doctor"), "pass/fail table"),
        (("collector", "run"), "/metrics"),
    ],
)
def test_help_says_what_it_does_and_its_exit_statuses(args: tuple[str, ...], says: str) -> None:
    result = run_cli(*args, "--help")
    assert result.returncode == 0
    assert says in result.stdout
    assert "exit status:" in result.stdout and "  2  " in result.stdout


def test_emulator_help_is_plain_text() -> None:
    result = run_cli("--help", module="agent.emulators")
    assert result.returncode == 0
    assert "sleep SECONDS" in result.stdout  # the script format is explained
    assert not re.search(r"``|:\w+:`", result.stdout), result.stdout
