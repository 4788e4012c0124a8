"""TLS and basic auth for the collector's HTTP, the way Prometheus exporters do it.

The model is the Prometheus exporter-toolkit's web config: a server certificate and key,
optionally a client CA (then every client must present a certificate it signed), and
``basic_auth_users`` mapping a name to a bcrypt hash. Prometheus users know that shape;
its hashes (``htpasswd -nBC 10``, ``$2y$``) work here unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from enum import Enum
from typing import Final

import bcrypt

from branchwatch.errors import ConfigError
from branchwatch.tlsfiles import check_pem_pair, read_tls_files

REALM: Final = "branchwatch"
CHALLENGE: Final = f'Basic realm="{REALM}"'
# A bcrypt hash as the exporter-toolkit and htpasswd write it: $2a$, $2b$ or $2y$, cost 4-31.
_BCRYPT_HASH: Final = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
BCRYPT_MAX_PASSWORD: Final = 72  # bytes: bcrypt reads no further, pyca's bcrypt refuses longer
HASH_COST: Final = 12  # what `branchwatch collector hash-password` writes (~0.3 s a check)
# Successful verifications remembered (Prometheus scrapes every 15 s; bcrypt costs ~0.3 s).
CACHE_SIZE: Final = 64
# bcrypt runs one at a time (as in the exporter-toolkit): a flood of wrong passwords takes
# one core at most. A request that cannot start its check within this long gets a 503.
VERIFY_WAIT_SECONDS: Final = 1.0

_TLS_FILE_ROLES: Final = {
    "tls_cert_file": "server certificate",
    "tls_key_file": "server key",
    "tls_client_ca_file": "client CA certificates",
}


def server_tls_context(cert_file: str, key_file: str, client_ca_file: str) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 at least), None when TLS is off.

    With ``client_ca_file`` a client must present a certificate that CA signed (mTLS).
    Raises :class:`ConfigError` naming the ``http.*`` key and the path of a file that
    cannot be used, or the key that is missing.
    """
    if not (cert_file or key_file or client_ca_file):
        return None
    if not (cert_file and key_file):
        raise ConfigError(
            "http.tls_cert_file and http.tls_key_file go together: set both for TLS "
            "(http.tls_client_ca_file adds client certificates to TLS), or none of them"
        )

    def fail(key: str, path: str, problem: str) -> ConfigError:
        return ConfigError(f"http.{key} {path}: {problem}")

    paths = {"tls_cert_file": cert_file, "tls_key_file": key_file}
    if client_ca_file:
        paths["tls_client_ca_file"] = client_ca_file
    contents = read_tls_files(paths, _TLS_FILE_ROLES, fail)
    check_pem_pair(
        contents["tls_cert_file"],
        ("tls_cert_file", cert_file),
        contents["tls_key_file"],
        ("tls_key_file", key_file),
        fail,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise fail(
            "tls_key_file", key_file, f"the key does not fit the certificate {cert_file} ({exc})"
        ) from exc
    if client_ca_file:
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except ssl.SSLError as exc:
            raise fail(
                "tls_client_ca_file", client_ca_file, f"no usable CA certificate in it ({exc})"
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def hash_password(password: bytes, cost: int = HASH_COST) -> str:
    """A bcrypt hash for ``basic_auth_users`` (and for Prometheus' own web config)."""
    if not password:
        raise ConfigError("the password is empty")
    if len(password) > BCRYPT_MAX_PASSWORD:
        raise ConfigError(f"the password is longer than bcrypt's {BCRYPT_MAX_PASSWORD} bytes")
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode()


class Verdict(Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # no, wrong or malformed credentials: 401
    BUSY = "busy"  # too many checks at once: 503, try again


class BasicAuth:
    """Checks ``Authorization: Basic …`` against bcrypt hashes, remembering successes.

    The cache holds a keyed hash of name and password (the key lives only in this
    process), never the password. An unknown name is checked against a dummy hash of
    the same cost, so it takes as long as a wrong password.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        self._hashes: dict[bytes, bytes] = {}
        for name, hashed in users.items():
            if not name or ":" in name:
                raise ConfigError(
                    f"http.basic_auth_users: {name!r} is not a user name (non-empty, no ':')"
                )
            if not _BCRYPT_HASH.match(hashed):
                # The value is a hash, not a secret, but it may be a password typed by mistake.
                raise ConfigError(
                    f"http.basic_auth_users.{name}: not a bcrypt hash ($2y$10$… or $2b$…); "
                    "make one with `branchwatch collector hash-password`"
                )
            self._hashes[name.encode()] = hashed.encode()
        if not self._hashes:
            raise ConfigError("http.basic_auth_users: no users")
        cost = max(int(hashed[4:6]) for hashed in self._hashes.values())
        # A valid hash of nothing anyone can send: checkpw spends the full cost on it.
        self._dummy = bcrypt.gensalt(rounds=cost) + b"." * 31
        self._cache_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._verify_lock = threading.Lock()

    def check(self, authorization: str | None) -> Verdict:
        """The verdict on one request's ``Authorization`` header (None: absent)."""
        credentials = _parse_basic(authorization)
        if credentials is None:
            return Verdict.DENIED
        name, password = credentials
        key = hmac.new(
            self._cache_key, len(name).to_bytes(4, "big") + name + password, hashlib.sha256
        ).digest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return Verdict.ALLOWED
        if not self._verify_lock.acquire(timeout=VERIFY_WAIT_SECONDS):
            return Verdict.BUSY
        try:
            hashed = self._hashes.get(name)
            matches = bcrypt.checkpw(password, hashed or self._dummy)
        finally:
            self._verify_lock.release()
        if not (matches and hashed is not None):
            return Verdict.DENIED
        with self._cache_lock:
            self._cache[key] = None
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return Verdict.ALLOWED

    @property
    def cached(self) -> int:
        """How many successful verifications are remembered."""
        with self._cache_lock:
            return len(self._cache)


def _parse_basic(authorization: str | None) -> tuple[bytes, bytes] | None:
    """(name, password) of a Basic ``Authorization`` value; None if absent or malformed."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    name, colon, password = decoded.partition(b":")
    if not colon or len(password) > BCRYPT_MAX_PASSWORD:
        return None
    return name, password
