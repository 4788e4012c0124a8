"""A real Prometheus and a real Alertmanager for the test suite (real parts, never fakes).

Both run Debian's binaries on free loopback ports, with their data and a log file in a
work directory of the test, and are context managers::

    with PrometheusProcess([collector.url], rule_files=[...], workdir=tmp_path) as prom:
        prom.wait_for_target_up()
        rows = prom.query('branchwatch_branch_open{branch="b1"}')

A missing binary fails the test in CI (``CI=true``) and skips it elsewhere
(:func:`tests.support.require_binary`). Startup failures raise with the tail of the log.

Timing: Prometheus applies discovered targets at most every 5 s, so the first scrape (and
``wait_for_target_up``) comes ~5 s after start; share one Prometheus per module when you can.

This module's API is shared with the dashboard tests: keep it stable.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Self

from branchwatch.broker import free_port, terminate
from branchwatch.lifecycle import StartedInWith
from tests.support import require_binary, wait_until

PROMETHEUS_PATHS: Final = ("/usr/bin/prometheus",)
ALERTMANAGER_PATHS: Final = ("/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager")
READY_TIMEOUT: Final = 30.0
DEFAULT_JOB: Final = "branchwatch-collector"
EXAMPLE_ALERTMANAGER_CONFIG: Final = (
    Path(__file__).resolve().parents[1] / "deploy" / "alertmanager" / "alertmanager.yml"
)
EXAMPLE_PROMETHEUS_DIR: Final = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


class PromstackError(AssertionError):
    """A Prometheus or Alertmanager process did not start or answered with an error."""


def _host_port(target: str) -> str:
    """``http://127.0.0.1:9108`` or ``127.0.0.1:9108`` → ``127.0.0.1:9108``."""
    if "://" in target:
        parsed = urllib.parse.urlsplit(target)
        return parsed.netloc
    return target


def _yaml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


class _ServerProcess(StartedInWith):
    """A server subprocess with a ``/-/ready`` endpoint, a log file and a clean stop."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self, ready_timeout: float = READY_TIMEOUT) -> Self:
        argv = self.argv()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_until(self._ready, ready_timeout, f"{self.name} {self.url}/-/ready")
        except PromstackError:  # the process exited: the message holds its log
            self.stop()
            raise
        except AssertionError as exc:
            self.stop()
            raise PromstackError(f"{self.name} not ready: {exc}\nlog:\n{self.log()}") from None
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise PromstackError(
                f"{self.name} exited with code {self.proc.returncode}\nlog:\n{self.log()}"
            )
        status, _ = self.get("/-/ready")
        return status == 200

    def log(self, tail: int = 6000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-tail:]

    def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        status, body = self.get(path, params)
        if status != 200:
            raise PromstackError(f"{self.name} GET {path} {params}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        terminate(proc, timeout)


class PrometheusProcess(_ServerProcess):
    """``prometheus`` scraping ``scrape_targets`` (one job), optionally with rules and an AM.

    ``scrape_targets`` are ``host:port`` or ``http://host:port`` (the path is /metrics).
    With ``config`` (a file, e.g. from :func:`example_prometheus_config`) Prometheus runs
    that file as it is; ``scrape_targets`` then only says which targets
    :meth:`wait_for_target_up` waits for, and the other settings are unused.
    """

    name = "prometheus"

    def __init__(
        self,
        scrape_targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        alertmanager_url: str | None = None,
        *,
        workdir: Path,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        job: str = DEFAULT_JOB,
        config: Path | None = None,
    ) -> None:
        self.binary = require_binary("prometheus", *PROMETHEUS_PATHS)
        super().__init__(workdir)
        self.scrape_targets = [_host_port(t) for t in scrape_targets]
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.job = job
        self.given_config = config
        self.config_path = Path(config).resolve() if config else workdir / "prometheus.yml"

    def config_text(self) -> str:
        lines = [
            "global:",
            f"  scrape_interval: {self.scrape_interval}",
            f"  scrape_timeout: {self.scrape_interval}",
            f"  evaluation_interval: {self.evaluation_interval}",
            "scrape_configs:",
            f"  - job_name: {json.dumps(self.job)}",
            "    static_configs:",
            f"      - targets: {_yaml_list(self.scrape_targets)}",
        ]
        if self.rule_files:
            lines += ["rule_files:", *(f"  - {json.dumps(str(p))}" for p in self.rule_files)]
        if self.alertmanager_url:
            lines += [
                "alerting:",
                "  alertmanagers:",
                "    - static_configs:",
                f"        - targets: [{json.dumps(_host_port(self.alertmanager_url))}]",
            ]
        return "\n".join(lines) + "\n"

    def argv(self) -> list[str]:
        if self.given_config is None:
            self.config_path.write_text(self.config_text())
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            "--web.enable-lifecycle",
            "--log.level=info",
        ]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: the result list (``[{"metric": {...}, "value": [ts, "v"]}, ...]``).

        A scalar or string result comes back as one row with an empty ``metric``.
        """
        body = self.get_json("/api/v1/query", {"query": promql})
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        body = self.get_json("/api/v1/targets", {"state": "active"})
        targets: list[dict[str, Any]] = body["data"]["activeTargets"]
        return targets

    def wait_for_target_up(self, timeout: float = 20.0) -> None:
        """Until every configured target has been scraped successfully."""

        def all_up() -> bool:
            targets = self.targets()
            return len(targets) == len(self.scrape_targets) and all(
                t["health"] == "up" for t in targets
            )

        try:
            wait_until(all_up, timeout, f"targets {self.scrape_targets} up")
        except AssertionError as exc:
            raise PromstackError(f"{exc}\ntargets: {self.targets()}\nlog:\n{self.log()}") from None

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing): ``[{"labels", "annotations", "state", ...}]``."""
        body = self.get_json("/api/v1/alerts")
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups, each with its ``rules`` and their health."""
        body = self.get_json("/api/v1/rules")
        groups: list[dict[str, Any]] = body["data"]["groups"]
        return groups

    def metric_names(self) -> list[str]:
        """Every metric name this Prometheus holds a series of (``__name__`` values)."""
        body = self.get_json("/api/v1/label/__name__/values")
        names: list[str] = body["data"]
        return names


class AlertmanagerProcess(_ServerProcess):
    """``prometheus-alertmanager`` with ``config_path``, no clustering."""

    name = "alertmanager"

    def __init__(self, config_path: Path, workdir: Path) -> None:
        self.binary = require_binary("prometheus-alertmanager", *ALERTMANAGER_PATHS)
        super().__init__(workdir)
        self.config_path = Path(config_path).resolve()

    def argv(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            "--log.level=info",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (API v2): ``[{"labels", "annotations", "status", ...}]``."""
        alerts: list[dict[str, Any]] = self.get_json("/api/v2/alerts")
        return alerts

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get_json("/api/v2/status")
        return status

    def post_alerts(self, alerts: Sequence[dict[str, Any]]) -> None:
        """Send alerts as Prometheus does (API v2: ``labels``, ``annotations``, times)."""
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(list(alerts)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            if response.status != 200:
                raise PromstackError(f"alertmanager POST /api/v2/alerts: {response.status}")


class WebhookReceiver(StartedInWith):
    """An HTTP server that records Alertmanager webhook notifications (``.notifications``).

    Each notification is the JSON body (``receiver``, ``status``, ``groupLabels``,
    ``alerts``...) plus ``"path"``: the URL path it was posted to.
    """

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                payload["path"] = self.path
                with receiver._lock:
                    receiver.notifications.append(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self, **labels: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(notification, alert) pairs so far whose alert has all of ``labels``."""
        with self._lock:
            notifications = list(self.notifications)
        return [
            (n, a)
            for n in notifications
            for a in n["alerts"]
            if all(a["labels"].get(k) == v for k, v in labels.items())
        ]


def example_alertmanager_config(
    webhook_url: str,
    out: Path,
    *,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    resolve_timeout: str = "5s",
) -> Path:
    """deploy/alertmanager/alertmanager.yml with every receiver posting to ``webhook_url``.

    Each receiver's URL keeps its name as the path (``{webhook_url}/north-pager``) and
    the waits are shortened for a test; routes, grouping and inhibition are the example's.
    """
    text = EXAMPLE_ALERTMANAGER_CONFIG.read_text()
    text, receivers = re.subn(
        r'url: "http://alert-gateway\.example\.internal/branchwatch/([\w-]+)"',
        lambda m: f'url: "{webhook_url}/{m.group(1)}"',
        text,
    )
    assert receivers, "no receiver URL to rewrite in the example config"
    for key, value in (
        ("group_wait", group_wait),
        ("group_interval", group_interval),
        ("repeat_interval", repeat_interval),
        ("resolve_timeout", resolve_timeout),
    ):
        text = re.sub(rf"\b{key}: \S+", f"{key}: {value}", text)
    templates = EXAMPLE_ALERTMANAGER_CONFIG.parent / "templates" / "*.tmpl"
    text = text.replace("  - templates/*.tmpl", f"  - {json.dumps(str(templates))}")
    out.write_text(text)
    return out


def example_prometheus_config(
    name: str, out: Path, replacements: dict[str, str], *, interval: str = "1s"
) -> Path:
    """deploy/prometheus/``name`` with each key of ``replacements`` (an example address or
    path) replaced by its value, and every interval and timeout set to ``interval``.

    A key missing from the example fails loudly: the test must run the shipped file,
    not a drifted copy.
    """
    text = (EXAMPLE_PROMETHEUS_DIR / name).read_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in deploy/prometheus/{name}"
        text = text.replace(old, new)
    text, changed = re.subn(
        r"\b(scrape_interval|scrape_timeout|evaluation_interval): \S+", rf"\1: {interval}", text
    )
    assert changed, f"no interval to shorten in deploy/prometheus/{name}"
    out.write_text(text)
    return out
