"""``/metrics`` by shard and gzipped, through the collector's real HTTP server, and a real
Prometheus scraping a collector as region.yml's shard targets (gzip, as it always asks)."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import yaml

from branchwatch.contract import metrics
from collector.config import HttpConfig
from collector.exposition import shard_of
from collector.http import CollectorHttpServer
from collector.httpsend import accepts_gzip
from collector.store import Store
from tests.integration.httpkit import filled_store, serving
from tests.promstack import EXAMPLE_PROMETHEUS_DIR, PrometheusProcess
from tests.support import parse_metrics, wait_until

pytestmark = pytest.mark.integration

BRANCHES: Final = 40
OWN: Final = b"branchwatch_collector_"
GZIP: Final = {"Accept-Encoding": "gzip"}

Answer = tuple[int, http.client.HTTPMessage, bytes]


def ask(
    connection: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> Answer:
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.headers, response.read()


def connect(server: CollectorHttpServer) -> http.client.HTTPConnection:
    host, port = server.server_address
    return http.client.HTTPConnection(host, port, timeout=10)


def held(store: Store) -> list[tuple[str, str]]:
    return [(s.region, s.branch) for s in store.branch_summaries(0.0)]


@pytest.fixture(scope="module")
def store() -> Store:
    return filled_store(BRANCHES)


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[CollectorHttpServer]:
    with serving(HttpConfig(), store) as running:
        yield running


@pytest.mark.parametrize(
    "query",
    ["?shard=1", "?shards=4", "?shard=x&shards=4", "?shard=4&shards=4", "?shard=0&shards=65",
     "?shard=0&shard=1&shards=2", "?shard=0&shards=3"],
)  # fmt: skip
def test_bad_shard_parameters_get_a_400_with_one_line(
    server: CollectorHttpServer, query: str
) -> None:
    connection = connect(server)
    try:
        status, headers, body = ask(connection, "/metrics" + query)
        assert status == 400
        assert headers["Content-Type"].startswith("text/plain")
        assert body.count(b"\n") == 1 and b"N one of 1, 2, 4, 8, 16, 32, 64" in body
        assert ask(connection, "/healthz")[0] == 200  # the connection is still served
    finally:
        connection.close()


def test_self_metrics_come_with_shard_0_only_and_every_branch_once(
    server: CollectorHttpServer, store: Store
) -> None:
    connection = connect(server)
    try:
        whole = ask(connection, "/metrics")[2]
        assert OWN in whole
        branches: list[tuple[str, str]] = []
        for shard in range(4):
            status, _, body = ask(connection, f"/metrics?shard={shard}&shards=4")
            assert status == 200
            assert (OWN in body) == (shard == 0)
            shown = [
                (dict(labels)["region"], dict(labels)["branch"])
                for name, labels in parse_metrics(body.decode())
                if name == metrics.BRANCH_OPEN.name
            ]
            assert all(shard_of(region, branch, 4) == shard for region, branch in shown)
            branches += shown
        assert sorted(branches) == held(store)
    finally:
        connection.close()


def floor_lines(body: bytes) -> list[bytes]:
    """The body without the collector's own metrics (they move between two requests)."""
    return [line for line in body.splitlines() if OWN not in line]


@pytest.mark.parametrize("path", ["/metrics", "/metrics?shard=2&shards=4"])
def test_gzip_and_identity_bodies_are_the_same_text_on_one_kept_connection(
    server: CollectorHttpServer, path: str
) -> None:
    connection = connect(server)
    try:
        status, plain_headers, plain = ask(connection, path)
        assert status == 200 and plain_headers["Content-Encoding"] is None
        assert int(plain_headers["Content-Length"]) == len(plain)
        status, headers, packed = ask(connection, path, GZIP)
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert headers["Vary"] == "Accept-Encoding"
        assert int(headers["Content-Length"]) == len(packed) < len(plain) / 4
        text = gzip.decompress(packed)
        if OWN in plain:
            assert floor_lines(text) == floor_lines(plain)
        else:
            assert text == plain  # no self-metrics: byte for byte
        for headers_sent, length in ((GZIP, len(packed)), ({}, len(plain))):
            status, head, body = ask(connection, path, headers_sent, method="HEAD")
            assert status == 200 and body == b""
            if OWN not in plain:
                assert int(head["Content-Length"]) == length
        refused = ask(connection, path, {"Accept-Encoding": "gzip;q=0, identity"})
        assert refused[1]["Content-Encoding"] is None and refused[2][:2] != b"\x1f\x8b"
        assert ask(connection, path, {"Accept-Encoding": "br, *"})[1]["Content-Encoding"] == "gzip"
    finally:
        connection.close()


def example_shard_job(target: str) -> dict[str, object]:
    """region.yml's scrape job with this test's collector as its one target."""
    example = yaml.safe_load((EXAMPLE_PROMETHEUS_DIR / "region.yml").read_text())
    (job,) = example["scrape_configs"]
    job["static_configs"] = [{**group, "targets": [target]} for group in job["static_configs"]]
    return dict(job)


class ShardedPrometheus(PrometheusProcess):
    def __init__(self, job: dict[str, object], targets: int, workdir: Path) -> None:
        super().__init__(["shard"] * targets, workdir=workdir)
        self.shard_job = job

    def config_text(self) -> str:
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}}
        return yaml.safe_dump({**config, "scrape_configs": [self.shard_job]})


def test_prometheus_scrapes_the_shard_targets_gzipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str | None, bool]] = []

    def recorded(accept_encoding: str | None) -> bool:
        takes = accepts_gzip(accept_encoding)
        asked.append((accept_encoding, takes))
        return takes

    monkeypatch.setattr("collector.http.accepts_gzip", recorded)
    store = filled_store(BRANCHES)
    with serving(HttpConfig(), store) as server:
        target = f"127.0.0.1:{server.server_address[1]}"
        job = example_shard_job(target)
        shards = len(job["static_configs"])  # type: ignore[arg-type]
        with ShardedPrometheus(job, shards, tmp_path / "prometheus") as prometheus:
            prometheus.wait_for_target_up(timeout=30)
            rows = prometheus.query(f"count by (shard) ({metrics.BRANCH_OPEN.name})")
            per_shard = {row["metric"]["shard"]: int(row["value"][1]) for row in rows}
            expected: dict[str, int] = {}
            for region, branch in held(store):
                key = str(shard_of(region, branch, shards))
                expected[key] = expected.get(key, 0) + 1
            assert per_shard == expected and len(expected) == shards
            own = prometheus.query(metrics.COLLECTOR_MQTT_CONNECTED.name)
            assert [row["metric"]["shard"] for row in own] == ["0"]
            ups = prometheus.query("up")
            assert sorted(row["metric"]["shard"] for row in ups) == [str(i) for i in range(shards)]
            wait_until(lambda: len(asked) >= shards, 10, "every shard scraped")
    assert asked and all(takes for _, takes in asked), asked
