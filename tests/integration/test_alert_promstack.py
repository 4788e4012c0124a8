"""tests/promstack.py itself: a real Prometheus scrapes a real collector; Alertmanager starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import metrics
from tests.promstack import AlertmanagerProcess, PrometheusProcess, PromstackError
from tests.support import CollectorProcess

pytestmark = pytest.mark.integration


def test_prometheus_scrapes_the_collector_and_answers_queries(
    mosquitto: EmbeddedBroker, tmp_path: Path
) -> None:
    collector = CollectorProcess(mosquitto.url, tmp_path, "promstack-collector").start()
    try:
        with PrometheusProcess([collector.url], workdir=tmp_path / "prom") as prom:
            prom.wait_for_target_up()
            rows = prom.query("up")
            assert [(r["metric"]["job"], r["value"][1]) for r in rows] == [
                ("branchwatch-collector", "1")
            ]
            assert prom.query("1 + 1")[0]["value"][1] == "2"
            connected = prom.query(metrics.COLLECTOR_MQTT_CONNECTED.name)
            assert connected and connected[0]["value"][1] == "1"
            assert prom.alerts() == []
            assert prom.rules() == []
            with pytest.raises(PromstackError, match="bad_data"):
                prom.query("sum(")
        assert prom.proc is None
    finally:
        collector.kill()


def test_prometheus_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    bad_rules = tmp_path / "bad.rules.yml"
    bad_rules.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n")
    prom = PrometheusProcess(["127.0.0.1:9"], rule_files=[bad_rules], workdir=tmp_path / "p")
    with pytest.raises(PromstackError, match=r"(?s)exited with code 1.*unclosed left parenthesis"):
        prom.start(ready_timeout=15)
    assert prom.proc is None


def test_alertmanager_starts_and_lists_no_alerts(tmp_path: Path) -> None:
    config = tmp_path / "am.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    with AlertmanagerProcess(config, tmp_path / "am") as am:
        assert am.alerts() == []
        assert am.status()["cluster"]["status"] == "disabled"
    assert am.proc is None
