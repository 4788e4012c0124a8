"""mqtts:// with a CA the collector trusts: a real Mosquitto TLS listener."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker, free_port
from tests.integration.test_collector_cli import ticket_reaches
from tests.support import CollectorProcess, require_binary

pytestmark = pytest.mark.integration


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    openssl = require_binary("openssl")
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for argv in (
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "1", "-subj", "/CN=branchwatch test CA"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run([str(a) for a in argv], check=True, capture_output=True)
    return ca, cert, key


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, int, Path]]:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    ca, cert, key = make_certificates(tmp_path)
    tls_port = free_port()
    listener = [
        f"listener {tls_port} 127.0.0.1",
        f"cafile {ca}",
        f"certfile {cert}",
        f"keyfile {key}",
    ]
    with EmbeddedBroker("mosquitto", extra_config=listener) as broker:
        yield broker, tls_port, ca


def test_collector_over_tls(tls_broker: tuple[EmbeddedBroker, int, Path], tmp_path: Path) -> None:
    broker, tls_port, ca = tls_broker
    config = tmp_path / "collector.toml"
    config.write_text(f'[mqtt]\nca_file = "{ca}"\n')
    state = tmp_path / "state"
    state.mkdir()
    collector = CollectorProcess(
        f"mqtts://127.0.0.1:{tls_port}", state, "tls", extra=["--config", str(config)]
    ).start()
    try:
        ticket_reaches(collector, broker.port, "events over the TLS session")
    finally:
        collector.kill()


def test_untrusted_broker_certificate_is_not_ready(
    tls_broker: tuple[EmbeddedBroker, int, Path], tmp_path: Path
) -> None:
    _, tls_port, _ = tls_broker
    collector = CollectorProcess(f"mqtts://127.0.0.1:{tls_port}", tmp_path, "tls-untrusted")
    with pytest.raises(AssertionError, match="collector not ready"):
        collector.start(ready_timeout=3.0)
    assert "certificate verify failed" in collector.log()
