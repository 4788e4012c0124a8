"""TLS files read and checked before OpenSSL sees them, so an error names the file.

OpenSSL's own errors say neither which file is wrong nor what it should have held; the MQTT
client and the collector's HTTP server both read their files here first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from branchwatch.errors import ConfigError

# (setting key, path, problem) -> the error to raise; each caller names its settings its way.
TlsFail = Callable[[str, str, str], ConfigError]


def read_tls_files(
    paths: Mapping[str, str], roles: Mapping[str, str], fail: TlsFail
) -> dict[str, bytes]:
    """The bytes of each file in ``paths`` (setting key -> path; an empty path is not set).

    ``roles`` says what each key's file holds ("client key"), for the error.
    """
    contents: dict[str, bytes] = {}
    for key, path in paths.items():
        if not path:
            continue
        try:
            with open(path, "rb") as file:
                contents[key] = file.read()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise fail(key, path, f"cannot read the {roles[key]}: {reason}") from exc
    return contents


def check_pem_pair(
    cert_text: bytes,
    cert_source: tuple[str, str],
    key_text: bytes,
    key_source: tuple[str, str],
    fail: TlsFail,
) -> None:
    """Refuse a certificate or key that is not PEM, and an encrypted key.

    ``cert_source`` and ``key_source`` are (setting key, path) of the file each came from.
    """
    if b"-----BEGIN CERTIFICATE-----" not in cert_text:
        raise fail(*cert_source, "no PEM certificate in it")
    if b"PRIVATE KEY-----" not in key_text:
        raise fail(*key_source, "no PEM private key in it")
    if b"ENCRYPTED" in key_text:
        # OpenSSL would prompt for a passphrase on the terminal: a service has none.
        raise fail(*key_source, "the private key is encrypted; give an unencrypted one")
