"""The collector's HTTP locked down as Prometheus exporters do it: TLS, mTLS, basic auth.

Real servers on loopback ports, real TLS handshakes with certificates made by the openssl
CLI, real bcrypt. The example scrape config is checked by a real Prometheus.
"""

from __future__ import annotations

import http.client
import logging
import re
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

import bcrypt
import msgspec
import pytest
import yaml

from branchwatch.errors import ConfigError
from collector import httpsecurity
from collector.config import HttpConfig
from collector.httpsecurity import CACHE_SIZE, CHALLENGE, BasicAuth, Verdict, hash_password
from tests.integration import scenario
from tests.integration.httpkit import (
    Pki,
    basic,
    client_context,
    exchange,
    filled_store,
    get,
    serving,
)
from tests.promstack import PrometheusProcess
from tests.support import wait_until

pytestmark = pytest.mark.integration

USER: Final = "prometheus"
PASSWORD: Final = "correct horse battery staple"
HASH: Final = hash_password(PASSWORD.encode(), cost=4)  # cost 4: fast tests
GOOD: Final = basic(USER, PASSWORD)
AUTH: Final = HttpConfig(basic_auth_users={USER: HASH})
STAFF_IDS: Final = (b'"t1"', b'"t2"')  # the scenario's tellers, as the API shows them
PROTECTED: Final = (
    "/metrics",
    "/api/v1/branches",
    f"/api/v1/branches/{scenario.REGION}/{scenario.BRANCH}",
)
EXAMPLE_SCRAPE_CONFIG: Final = (
    Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "scrape-collector.yml"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(pki: Pki) -> HttpConfig:
    cert, key = pki.server()
    return HttpConfig(tls_cert_file=str(cert), tls_key_file=str(key))


# basic auth ------------------------------------------------------------------------------


def test_auth_guards_metrics_and_everything_showing_staff_ids() -> None:
    with serving(AUTH) as server:
        for path in PROTECTED:
            status, _, body = get(server, path)
            assert status == 401, path
            assert not any(staff in body for staff in STAFF_IDS)
            assert get(server, path, GOOD)[0] == 200, path
        assert get(server, "/metrics", method="HEAD")[0] == 401
        assert any(staff in get(server, PROTECTED[2], GOOD)[2] for staff in STAFF_IDS)
        assert get(server, "/nope")[0] == 401  # what exists is not told either
        assert get(server, "/nope", GOOD)[0] == 404
        for path in ("/healthz", "/readyz"):  # probes stay open
            assert get(server, path)[0] == 200, path
        status, _, page = get(server, "/")
        assert status == 200
        assert b'href="metrics"' in page
        assert b"branches known" not in page and b"Version" not in page
        assert b"branches known: 1" in get(server, "/", GOOD)[2]
        assert b"branches known" not in get(server, "/", basic(USER, "wrong"))[2]


def test_without_users_everything_is_open() -> None:
    with serving(HttpConfig()) as server:
        for path in PROTECTED:
            assert get(server, path)[0] == 200, path
        assert b"branches known: 1" in get(server, "/")[2]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic(USER, "wrong"),
        basic("intruder", PASSWORD),
        basic(USER, PASSWORD + "x" * 80),  # beyond bcrypt's 72 bytes
        "Basic !!!not-base64",
        "Basic " + "cHJvbWV0aGV1cw==",  # "prometheus": no colon, no password
        "Bearer " + PASSWORD,
    ],
    ids=["none", "wrong password", "unknown user", "too long", "bad base64", "no colon", "bearer"],
)
def test_a_refusal_says_how_to_authenticate(authorization: str | None) -> None:
    with serving(AUTH) as server:
        status, headers, body = get(server, "/api/v1/branches", authorization)
    assert status == 401
    assert headers["WWW-Authenticate"] == CHALLENGE == 'Basic realm="branchwatch"'
    assert headers.get_content_type() == "text/plain"
    assert body == b"authentication required\n"


def test_refusals_are_logged_without_what_was_sent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = basic(USER, "hunter2-typo")
    with serving(AUTH) as server:
        assert get(server, "/metrics", wrong)[0] == 401
        assert get(server, "/metrics", GOOD)[0] == 200
    assert "/metrics from 127.0.0.1 refused: no valid credentials" in caplog.text
    for secret in ("hunter2-typo", PASSWORD, wrong.split()[1], GOOD.split()[1]):
        assert secret not in caplog.text


def counting_checkpw(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every bcrypt check the collector makes (the hash it checked against)."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)  # the module collector.httpsecurity calls
    return calls


def test_a_successful_check_is_remembered_a_failed_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = counting_checkpw(monkeypatch)
    with serving(AUTH) as server:
        for _ in range(10):  # a scrape every 15 s costs one bcrypt check per run, not per scrape
            assert get(server, "/metrics", GOOD)[0] == 200
        assert len(calls) == 1
        for _ in range(3):
            assert get(server, "/metrics", basic(USER, "guess"))[0] == 401
        assert len(calls) == 4
        assert server.auth is not None and server.auth.cached == 1


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    users = {f"user{n}": hash_password(f"pw{n}".encode(), cost=4) for n in range(CACHE_SIZE + 8)}
    auth = BasicAuth(users)
    for n in range(CACHE_SIZE + 8):
        assert auth.check(basic(f"user{n}", f"pw{n}")) is Verdict.ALLOWED
    assert auth.cached == CACHE_SIZE
    calls = counting_checkpw(monkeypatch)
    assert auth.check(basic(f"user{CACHE_SIZE + 7}", f"pw{CACHE_SIZE + 7}")) is Verdict.ALLOWED
    assert calls == []  # the latest are kept...
    assert auth.check(basic("user0", "pw0")) is Verdict.ALLOWED
    assert len(calls) == 1  # ...the oldest was dropped and is checked again


def test_an_unknown_user_costs_as_much_as_a_wrong_password() -> None:
    """No timing tells which names exist: an unknown name is checked against a dummy hash."""
    auth = BasicAuth({USER: hash_password(PASSWORD.encode(), cost=10)})

    def cpu_seconds(authorization: str) -> float:
        start = time.thread_time()  # CPU of this thread: bcrypt runs here, load does not count
        assert auth.check(authorization) is Verdict.DENIED
        return time.thread_time() - start

    known = [cpu_seconds(basic(USER, f"guess{n}")) for n in range(5)]
    unknown = [cpu_seconds(basic(f"nobody{n}", "guess")) for n in range(5)]
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2.0, (known, unknown)
    assert statistics.median(known) > 0.01  # cost 10 is really spent (tens of ms)


def test_checks_run_one_at_a_time_and_a_crowd_gets_503(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = HttpConfig(basic_auth_users={USER: hash_password(PASSWORD.encode(), cost=13)})
    monkeypatch.setattr(httpsecurity, "VERIFY_WAIT_SECONDS", 0.01)
    with serving(slow) as server:
        results: list[tuple[int, str | None]] = []

        def attempt(n: int) -> None:
            status, headers, _ = get(server, "/metrics", basic(USER, f"guess{n}"))
            results.append((status, headers["Retry-After"]))

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(results) == [(401, None), (503, "1"), (503, "1")]


# TLS and mTLS ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_serves_https_with_tls_1_2_at_least(pki: Pki, tls: HttpConfig) -> None:
    store = filled_store(200)  # a scrape of MB: the TLS path joins the cached fragments
    with serving(tls, store) as server:
        assert server.url.startswith("https://127.0.0.1:")
        context = client_context(pki.ca)
        status, _, body = get(server, "/metrics", context=context)
        assert status == 200
        floor = store.render_bytes()
        assert len(floor) > 1_000_000 and body.startswith(floor)
        old = client_context(pki.ca)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):  # the server's no
            get(server, "/healthz", context=old)
        # Plain HTTP on the TLS port: no answer in the clear.
        try:
            answer = exchange(server.server_address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        except ConnectionResetError:
            answer = b""
        assert b"HTTP/1.1 200" not in answer


REFUSED_HANDSHAKE: Final = (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)


def test_mtls_wants_a_certificate_of_the_client_ca(
    pki: Pki, tls: HttpConfig, tmp_path: Path
) -> None:
    mtls = msgspec.structs.replace(tls, tls_client_ca_file=str(pki.ca))
    stranger = Pki(tmp_path / "other", "other-ca")
    with serving(mtls) as server:
        with pytest.raises(REFUSED_HANDSHAKE):
            get(server, "/healthz", context=client_context(pki.ca))
        with pytest.raises(REFUSED_HANDSHAKE):
            get(server, "/healthz", context=client_context(pki.ca, *stranger.client()))
        assert get(server, "/healthz", context=client_context(pki.ca, *pki.client()))[0] == 200


# configuration --------------------------------------------------------------------------


def config_errors(pki: Pki, tls: HttpConfig, tmp_path: Path) -> list[tuple[HttpConfig, str]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    _, client_key = pki.client("other-client")
    missing = str(tmp_path / "none.pem")
    return [
        (HttpConfig(tls_cert_file=tls.tls_cert_file), "go together"),
        (HttpConfig(tls_client_ca_file=str(pki.ca)), "go together"),
        (msgspec.structs.replace(tls, tls_cert_file=missing),
         f"http.tls_cert_file {missing}: cannot read the server certificate"),
        (msgspec.structs.replace(tls, tls_key_file=missing),
         f"http.tls_key_file {missing}: cannot read the server key"),
        (msgspec.structs.replace(tls, tls_client_ca_file=missing),
         f"http.tls_client_ca_file {missing}: cannot read"),
        (msgspec.structs.replace(tls, tls_cert_file=str(garbage)), "no PEM certificate"),
        (msgspec.structs.replace(tls, tls_key_file=str(client_key)), "does not fit"),
        (msgspec.structs.replace(tls, tls_client_ca_file=str(garbage)), "no usable CA"),
        (HttpConfig(basic_auth_users={USER: "secret"}), "http.basic_auth_users.prometheus: not a"),
        (HttpConfig(basic_auth_users={"a:b": HASH}), "not a user name"),
        (HttpConfig(max_connections=0), "http.max_connections"),
        (HttpConfig(read_header_timeout_seconds=0), "http.read_header_timeout_seconds"),
    ]  # fmt: skip


def test_unusable_settings_are_config_errors(pki: Pki, tls: HttpConfig, tmp_path: Path) -> None:
    for config, message in config_errors(pki, tls, tmp_path):
        with pytest.raises(ConfigError) as error:
            config.validate()
        assert message in str(error.value)
        assert "secret" not in str(error.value)  # a password typed as a hash is not echoed


def test_hash_password_prints_a_hash_the_config_accepts() -> None:
    def hash_of(password: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "branchwatch", "collector", "hash-password", "--cost", "5"]
        return subprocess.run(
            argv, check=False, input=password, capture_output=True, text=True, timeout=30
        )

    result = hash_of("s3cret pass\n")
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert re.fullmatch(r"\$2b\$05\$[./A-Za-z0-9]{53}", hashed)
    assert bcrypt.checkpw(b"s3cret pass", hashed.encode())
    HttpConfig(basic_auth_users={"prom": hashed}).validate()
    empty = hash_of("")
    assert empty.returncode == 2
    assert "branchwatch: error: no password" in empty.stderr


# the example scrape config, against a real Prometheus ------------------------------------


class ExamplePrometheus(PrometheusProcess):
    """Prometheus with the example's scrape config, pointed at the test's collectors."""

    def __init__(self, jobs: list[dict[str, object]], workdir: Path) -> None:
        super().__init__([], workdir=workdir)
        self.jobs = jobs

    def config_text(self) -> str:
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}}
        return yaml.safe_dump({**config, "scrape_configs": self.jobs})

    def health(self) -> dict[str, tuple[str, str]]:
        """Per job: "up" once every shard target is, else the first other state."""
        health: dict[str, tuple[str, str]] = {}
        for t in sorted(self.targets(), key=lambda t: t["health"] == "up"):
            health.setdefault(t["labels"]["job"], (t["health"], t["lastError"]))
        return health


def example_job(name: str, target: str, **files: Path) -> dict[str, object]:
    """The example's job with this test's target, files (by key) and a short interval."""
    (job,) = yaml.safe_load(EXAMPLE_SCRAPE_CONFIG.read_text())["scrape_configs"]
    job.update(job_name=name, scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{**group, "targets": [target]} for group in job["static_configs"]]
    job["basic_auth"]["password_file"] = str(files.pop("password_file"))
    job["tls_config"].update({key: str(path) for key, path in files.items()})
    return dict(job)


def test_prometheus_scrapes_over_tls_with_basic_auth(
    pki: Pki, tls: HttpConfig, tmp_path: Path
) -> None:
    example = yaml.safe_load(EXAMPLE_SCRAPE_CONFIG.read_text())["scrape_configs"][0]
    assert example["scheme"] == "https" and example["basic_auth"]["username"] == USER
    right, wrong = tmp_path / "password", tmp_path / "wrong-password"
    right.write_text(PASSWORD + "\n")
    wrong.write_text("not the password\n")
    client_cert, client_key = pki.client("prometheus")
    secured = msgspec.structs.replace(tls, basic_auth_users={USER: HASH})
    mutual = msgspec.structs.replace(secured, tls_client_ca_file=str(pki.ca))
    with serving(secured) as plain_tls, serving(mutual) as mtls:
        target, mtls_target = (s.url.removeprefix("https://") for s in (plain_tls, mtls))
        jobs = [
            example_job("tls", target, ca_file=pki.ca, password_file=right),
            example_job("wrong-password", target, ca_file=pki.ca, password_file=wrong),
            example_job("mtls", mtls_target, ca_file=pki.ca, password_file=right,
                        cert_file=client_cert, key_file=client_key),
        ]  # fmt: skip
        with ExamplePrometheus(jobs, tmp_path / "prometheus") as prometheus:
            expected = {"tls": "up", "wrong-password": "down", "mtls": "up"}

            def settled() -> bool:
                # The 401 is waited for too: once, on a busy machine, the wrong password's
                # target read "down" with its error still empty.
                health = prometheus.health()
                states = {job: state[0] for job, state in health.items()}
                return states == expected and "401" in health["wrong-password"][1]

            try:
                wait_until(settled, 30, "the three targets scraped, the wrong password refused")
            except AssertionError:
                raise AssertionError(f"{prometheus.health()}\n{prometheus.log()}") from None
            rows = prometheus.query('branchwatch_branch_open{job="tls"}')
            assert [row["metric"]["branch"] for row in rows] == [scenario.BRANCH]
