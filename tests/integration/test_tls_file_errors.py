"""A TLS file the agent or the collector cannot use stops it at start with one line
naming the file's key and path (exit status 2: a restart will not help)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from branchwatch.broker import free_port
from tests.support import run_cli

pytestmark = pytest.mark.integration

MISSING_CA = (
    "mqtt.ca_file /nonexistent.pem: cannot read the CA certificates: No such file or directory"
)


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if message in line], result.stderr


def test_collector_names_the_missing_ca_file(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text('[mqtt]\nbroker = "mqtts://127.0.0.1:8883"\nca_file = "/nonexistent.pem"\n')
    result = run_cli(
        "collector", "run", "--config", str(config), "--http", f"127.0.0.1:{free_port()}"
    )
    assert_one_line_error(result, MISSING_CA)


def test_agent_names_the_missing_client_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        'region = "north"\nbranch = "b0001"\nagent = "agent-1"\n'
        f'[mqtt]\nbroker = "mqtts://127.0.0.1:8883"\ncert_file = "{cert}"\n'
        f'key_file = "{tmp_path}/missing.key"\n'
        f'[spool]\npath = "{tmp_path}/spool.db"\n'
    )
    result = run_cli("agent", "run", "--config", str(config))
    assert_one_line_error(
        result,
        f"mqtt.key_file {tmp_path}/missing.key: cannot read the client key: "
        "No such file or directory",
    )
