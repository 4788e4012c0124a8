"""TLS files of the MQTT connection: a file that cannot be used is named, with its path."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from branchwatch.errors import ConfigError
from branchwatch.mqttconfig import MqttClientConfig, tls_context
from tests.integration.test_collector_tls import make_certificates


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca, cert, key = make_certificates(directory)
    not_pem = directory / "notes.txt"
    not_pem.write_text("hello\n")
    encrypted = directory / "encrypted.key"
    encrypted.write_text(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
    return {
        "ca": ca,
        "cert": cert,
        "key": key,
        "ca_key": directory / "ca.key",
        "not_pem": not_pem,
        "encrypted": encrypted,
        "dir": directory,
    }


def test_usable_files_give_a_verifying_client_context(pki: dict[str, Path]) -> None:
    context = tls_context(str(pki["ca"]), str(pki["cert"]), str(pki["key"]))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert tls_context().verify_mode == ssl.CERT_REQUIRED, "system CAs by default"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"ca_file": "/nonexistent.pem"},
            "mqtt.ca_file /nonexistent.pem: cannot read the CA certificates: "
            "No such file or directory",
        ),
        ({"ca_file": "dir"}, "mqtt.ca_file {dir}: cannot read the CA certificates: Is a directory"),
        ({"ca_file": "not_pem"}, "mqtt.ca_file {not_pem}: no usable CA certificate in it"),
        (
            {"ca_file": "ca", "cert_file": "cert", "key_file": "/nope.key"},
            "mqtt.key_file /nope.key: cannot read the client key: No such file or directory",
        ),
        (
            {"cert_file": "/nope.pem", "key_file": "key"},
            "mqtt.cert_file /nope.pem: cannot read the client certificate",
        ),
        ({"cert_file": "key", "key_file": "key"}, "mqtt.cert_file {key}: no PEM certificate"),
        ({"cert_file": "cert", "key_file": "ca"}, "mqtt.key_file {ca}: no PEM private key"),
        ({"cert_file": "cert"}, "mqtt.cert_file {cert}: no PEM private key"),
        (
            {"cert_file": "cert", "key_file": "encrypted"},
            "mqtt.key_file {encrypted}: the private key is encrypted",
        ),
        (
            {"cert_file": "cert", "key_file": "ca_key"},
            "mqtt.key_file {ca_key}: the key does not fit the certificate {cert}",
        ),
    ],
)
def test_an_unusable_file_is_named_with_its_path(
    pki: dict[str, Path], files: dict[str, str], message: str
) -> None:
    paths = {key: str(pki.get(value, value)) for key, value in files.items()}
    expected = message.format(**{name: str(path) for name, path in pki.items()})
    with pytest.raises(ConfigError) as caught:
        tls_context(paths.get("ca_file", ""), paths.get("cert_file", ""), paths.get("key_file", ""))
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "Errno" not in str(caught.value)


def test_a_flag_can_stand_for_the_key_in_the_message() -> None:
    with pytest.raises(ConfigError, match=r"^--ca-file /nonexistent\.pem: cannot read"):
        tls_context("/nonexistent.pem", names={"ca_file": "--ca-file"})


def test_the_connection_schema_builds_tls_only_for_mqtts() -> None:
    plain = MqttClientConfig(broker="mqtt://127.0.0.1:1883", ca_file="/nonexistent.pem")
    assert plain.tls_context() is None, "no TLS, so the CA file is not read"
    secure = MqttClientConfig(broker="mqtts://127.0.0.1", ca_file="/nonexistent.pem")
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file /nonexistent\.pem"):
        secure.tls_context()
