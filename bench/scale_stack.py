"""The bank in small for ``make bench-scale``: real processes on free loopback ports.

- a 3-node NATS cluster running the shipped kit (:mod:`tests.natscluster`), its users
  made by the kit's ``add-user.sh``; a variant of the kit's ``mqtt`` block may be given
  (``ack_wait = "2s"``…) to measure what a setting changes;
- per region a collector (``--region``, its own user pinned to the region), each on a
  different node first in its broker list; with twins, a second one on the next node;
- per region a Prometheus scraping its collectors with every rule file of ``alerts/``,
  and a global Prometheus federating the regions' ``region:*`` recording rules: the
  shipped ``deploy/prometheus/region.yml`` and ``global.yml``.

The simulator's shards log in as one user allowed every agent's topics: they stand for
thousands of agents each, and the kit's ``add-user.sh`` makes one user per agent.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from branchwatch.broker import free_port
from collector.httpsecurity import hash_password
from tests.natscluster import NatsCluster
from tests.promstack import PrometheusProcess, example_prometheus_config
from tests.support import CollectorProcess

RULES: Final = Path(__file__).resolve().parents[1] / "alerts" / "rules"
MARKER: Final = "# add-user.sh inserts users above this line"
SIM_USER: Final = "bench-sim"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rotated(urls: list[str], first: int) -> list[str]:
    """The broker list starting at node ``first``, the others after it in order."""
    first %= len(urls)
    return urls[first:] + urls[:first]


@dataclass
class RegionCollector:
    region: str
    name: str  # its client id: collector-north-a
    node: int  # the node first in its list
    process: CollectorProcess

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid


class Stack:
    """Everything but the load; :meth:`close` ends what :meth:`start` began."""

    def __init__(
        self,
        workdir: Path,
        regions: list[str],
        *,
        twins: bool = False,
        nats_mqtt: dict[str, str] | None = None,
        scrape_interval: str = "15s",
    ) -> None:
        self.workdir, self.regions, self.twins = workdir, regions, twins
        self.scrape_interval = scrape_interval
        self.cluster = NatsCluster(workdir / "nats")
        self._mqtt_block(nats_mqtt or {})
        self.collectors: list[RegionCollector] = []
        self.region_proms: dict[str, PrometheusProcess] = {}
        self.global_prom: PrometheusProcess | None = None
        self.sim_password = workdir / "nats" / f"{SIM_USER}.password"

    @property
    def urls(self) -> list[str]:
        return self.cluster.urls

    def _mqtt_block(self, settings: dict[str, str]) -> None:
        """Set keys of the kit's ``mqtt { }`` block in this run's copy (never the kit)."""
        conf = self.cluster.workdir / "branchwatch.conf"
        text = conf.read_text()
        for key, value in settings.items():
            line = f"  {key}: {value}"
            text, found = re.subn(rf"(?m)^  {re.escape(key)}: .*$", line, text)
            if not found:
                text = text.replace("mqtt {\n", f"mqtt {{\n{line}\n", 1)
        conf.write_text(text)

    def _add_sim_user(self) -> None:
        """One user for the simulator's shards: every agent's events, status and cmd."""
        password = secrets.token_urlsafe(24)
        self.sim_password.write_text(password + "\n")
        self.sim_password.chmod(0o600)
        agents = "bw.v1.*.*.*"
        line = (
            f'  {{user: "{SIM_USER}", password: "{hash_password(password.encode(), 4)}", '
            'allowed_connection_types: ["MQTT"], permissions: {'
            f'publish: ["{agents}.events", "{agents}.status"], '
            f'subscribe: ["{agents}.cmd", "$MQTT.sub.>"]}}}}'
        )
        users = self.cluster.workdir / "users.conf"
        users.write_text(users.read_text().replace(MARKER, f"{line}\n{MARKER}"))

    def start(self, probe_agents: list[str]) -> Stack:
        """Users, the cluster, the collectors, the Prometheus tiers (in that order)."""
        cluster = self.cluster
        for region in self.regions:
            cluster.add_collector(f"collector-{region}", region)
            for agent in probe_agents:
                cluster.add_agent(region, "probe", agent)
        self._add_sim_user()
        self._start_cluster()
        for index, region in enumerate(self.regions):
            for twin, letter in enumerate("ab"[: 1 + self.twins]):
                self.collectors.append(self._collector(region, letter, index + twin))
        self._prometheus_tiers()
        return self

    def _start_cluster(self, attempts: int = 3) -> None:
        """The nodes on free ports; again on fresh ports when one was taken meanwhile (other
        programs on this machine pick ports too, between our choice and the bind)."""
        for attempt in range(attempts):
            try:
                self.cluster.start()
                return
            except AssertionError as exc:
                self.cluster.close()
                if attempt == attempts - 1:
                    raise
                print(f"the NATS cluster did not start ({str(exc)[:120]}…); new ports", flush=True)
                for node in self.cluster.nodes:
                    node.client_port, node.http_port = free_port(), free_port()
                    node.mqtt_port, node.cluster_port = free_port(), free_port()
                    shutil.rmtree(node.store, ignore_errors=True)

    def _prometheus_tiers(self) -> None:
        """deploy/prometheus/region.yml per region, global.yml over them: the shipped files
        with the addresses, the rules' path and the interval replaced. Nobody listens at
        the Alertmanager address: the rules are evaluated as in production, the alerts
        go nowhere."""
        nowhere = f"127.0.0.1:{free_port()}"
        for region in self.regions:
            targets = [c.process.url for c in self.collectors if c.region == region]
            listed = ", ".join(f'"{t.removeprefix("http://")}"' for t in targets)
            config = example_prometheus_config(
                "region.yml",
                self.workdir / f"prometheus-{region}.yml",
                {
                    '"collector-north-a:9108", "collector-north-b:9108"': listed,
                    "/etc/prometheus/branchwatch/*.rules.yml": str(RULES / "*.rules.yml"),
                    "alertmanager.example.internal:9093": nowhere,
                },
                interval=self.scrape_interval,
            )
            workdir = self.workdir / f"prometheus-{region}"
            self.region_proms[region] = PrometheusProcess(
                targets, workdir=workdir, config=config
            ).start()
        addresses = {r: p.url.removeprefix("http://") for r, p in self.region_proms.items()}
        names = ["north", "south", "east"]  # the regions global.yml lists
        listed = ", ".join(f'"{a}"' for a in addresses.values())
        config = example_prometheus_config(
            "global.yml",
            self.workdir / "prometheus-global.yml",
            {", ".join(f'"prometheus-{n}:9090"' for n in names): listed},
            interval=self.scrape_interval,
        )
        self.global_prom = PrometheusProcess(
            list(addresses.values()), workdir=self.workdir / "prometheus-global", config=config
        ).start()

    def _collector(self, region: str, letter: str, node: int) -> RegionCollector:
        name = f"collector-{region}-{letter}"
        state = self.workdir / name
        state.mkdir()
        user = f"collector-{region}"
        config = self.workdir / f"{name}.toml"
        config.write_text(
            f'[mqtt]\nprotocol = "3.1.1"\nusername = "{user}"\n'
            f'password_file = "{self.cluster.passwords[user]}"\n'
        )
        urls = rotated(self.urls, node)
        extra = ["--config", str(config), "--region", region]
        extra += [flag for url in urls[1:] for flag in ("--broker", url)]
        process = CollectorProcess(urls[0], state, name, extra=extra).start(60)
        return RegionCollector(region, name, node % len(self.urls), process)

    def close(self) -> None:
        for prom in [*self.region_proms.values(), self.global_prom]:
            if prom is not None:
                prom.stop()
        for collector in self.collectors:
            collector.process.kill()
        self.cluster.close()
