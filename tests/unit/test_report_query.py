"""The report's PromQL and its HTTP errors (real queries run in tests/integration)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from branchwatch.broker import free_port
from branchwatch.cli import main
from branchwatch.errors import ConfigError
from branchwatch.report.query import (
    Prometheus,
    PrometheusError,
    Queries,
    Sample,
    Window,
    duration,
    prometheus_url,
    region_matcher,
)


def test_durations_are_whole_seconds_or_milliseconds() -> None:
    assert duration(86400) == "86400s"
    assert duration(90000.25) == "90000250ms"
    assert duration(0.0001) == "1ms"  # never an empty range


def test_regions_become_one_matcher() -> None:
    assert region_matcher([]) == ""
    assert region_matcher(["south", "north", "south"]) == 'region=~"north|south"'
    with pytest.raises(ConfigError, match="not a region id"):
        region_matcher(['north"} or vector(1) #'])


def test_counts_take_one_copy_of_each_series_an_ha_pair_exports() -> None:
    q = Queries(window=604800, step=300, regions='region=~"north"')
    walkouts = q.counted("branchwatch_tickets_lost_total", "service", 'reason="walkout"')
    assert walkouts == (
        "sum by (region, branch) (max by (region, branch, service) ("
        'increase(branchwatch_tickets_lost_total{region=~"north", reason="walkout"}[604800s])))'
    )
    assert q.ratings().startswith("sum by (region, branch, rating) (max by (region, branch, ")
    assert "max by (region, branch, teller, rating)" in q.teller_ratings()


def test_minutes_are_sampled_while_the_branch_is_open() -> None:
    q = Queries(window=86400, step=60)
    empty = q.post1_empty_samples()
    assert empty.startswith("sum_over_time((")
    assert empty.endswith(")[86400s:60s])")
    assert 'max by (region, branch) (branchwatch_position_staffed{position="1"}) == bool 0' in empty
    open_ = "(max by (region, branch) (branchwatch_branch_open) == 1)"
    assert f"and on(region, branch) {open_}" in empty
    assert q.open_samples() == (
        "count_over_time(((max by (region, branch) (branchwatch_branch_open) == 1))[86400s:60s])"
    )
    assert "max by (region, branch, agent, device) (branchwatch_device_up)" in q.devices_down()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("prometheus:9090", "expected http://host:port"),
        ("ftp://prometheus:9090", "expected http://host:port"),
        ("http://admin:secret@prometheus:9090", "no credentials in the URL"),
    ],
)
def test_a_bad_prometheus_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        prometheus_url(url)


def test_the_url_may_carry_a_path_prefix() -> None:
    assert prometheus_url("https://ops.example/prometheus/") == "https://ops.example/prometheus"


def test_an_unreachable_prometheus_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusError, match=f"cannot reach Prometheus at {url}: "):
        Prometheus(url, timeout=5).query("up", 0)


class _Answers(BaseHTTPRequestHandler):
    status = 200
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def answering() -> Iterator[tuple[type[_Answers], str]]:
    """A local HTTP server whose one answer the test sets (status, body), and its URL."""

    class Handler(_Answers):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Handler, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_refusing_a_query_is_reported_with_its_reason(
    answering: tuple[type[_Answers], str],
) -> None:
    handler, url = answering
    handler.status = 400
    handler.body = b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}'
    with pytest.raises(PrometheusError, match="HTTP 400: parse error at char 3"):
        Prometheus(url).query("up{", 0)


def test_something_else_than_prometheus_is_reported(
    answering: tuple[type[_Answers], str],
) -> None:
    handler, url = answering
    handler.body = b"<html>a login page</html>"
    with pytest.raises(PrometheusError, match="did not answer as Prometheus' API does"):
        Prometheus(url).query("up", 0)


def test_unreachable_prometheus_exits_1_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status = main(["report", "--prometheus", url, "--period", "week", "--timezone", "UTC"])
    assert status == 1
    assert capsys.readouterr().err == (
        f"branchwatch: error: cannot reach Prometheus at {url}: Connection refused\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--period", "quarter", "--date", "2999-01-01"), "the quarter 2999-Q1 has not started"),
        (("--period", "day", "--prometheus", "localhost:9090"), "expected http://host:port"),
        (("--period", "day", "--region", "North Region"), "not a region id"),
        (("--period", "day", "--config", "{dir}/missing.toml"), "cannot read"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens at the default: reaching it would be exit 1, not 2.
    argv = ["report", "--prometheus", f"http://127.0.0.1:{free_port()}", "--timezone", "UTC"]
    argv += [arg.replace("{dir}", str(tmp_path)) for arg in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("branchwatch: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--period", "year"), "invalid choice: 'year'"),
        (("--period", "day", "--date", "2025-13-01"), "'2025-13-01' is not a date"),
        (("--period", "day", "--step", "0"), "must be greater than 0"),
    ],
)
def test_usage_errors_exit_2(
    args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--prometheus", "http://127.0.0.1:9", *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


class Recorder:
    """Answers every query with one sample per branch: 1 per call (or per range point)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[float, ...]]] = []

    def query(self, promql: str, at: float) -> list[Sample]:
        self.calls.append(("query", promql, (at,)))
        return [Sample({"region": "north", "branch": "b1"}, 1.0)]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Sample]:
        self.calls.append(("range", promql, (start, end, step)))
        points = int((end - start) // step) + 1
        return [Sample({"region": "north", "branch": "b1"}, 1.0 + i) for i in range(points)]


def test_a_short_window_is_one_instant_query() -> None:
    prom = Recorder()
    window = Window(prom, start=0.0, end=25 * 3600.0, step=60)  # a 25 h day
    assert [s.value for s in window.ask(Queries.open_samples)] == [1.0]
    assert prom.calls == [("query", Queries(25 * 3600.0, 60).open_samples(), (25 * 3600.0,))]


def test_a_long_window_is_asked_a_day_at_a_time_and_combined_per_series() -> None:
    prom = Recorder()
    day = 86400.0
    window = Window(prom, start=1000.0, end=1000.0 + 7 * day - 3600, step=300)  # spring week
    [total] = window.ask(lambda q: q.counted("x_total", "service"))
    [(kind, promql, (start, end, step)), (last, rest, (at,))] = prom.calls
    assert (kind, start, end, step) == ("range", 1000.0 + day, 1000.0 + 6 * day, day)
    assert "increase(x_total[86400s])" in promql
    assert (last, at) == ("query", 1000.0 + 7 * day - 3600)
    assert "increase(x_total[82800s])" in rest  # the 23 h left
    assert total.value == (1 + 2 + 3 + 4 + 5 + 6) + 1  # six whole days, then the rest
    [largest] = Window(Recorder(), 0.0, 3 * day, 60).ask(Queries.branches, max)
    assert largest.value == 3  # range points 1, 2, 3 (the rest is empty): the largest kept
