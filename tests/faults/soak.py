"""``python -m tests.faults.soak`` (``make soak``): a long run at ten times a busy branch's rate.

The simulator (in this process) plays BRANCHES branches at SPEED times real
time from a busy morning, beside a rig of real agents with emulated devices;
a witness subscriber counts every event that reached the broker. Every minute
the resident memory of the collector, Mosquitto and the agents is sampled.
At the end the branches go quiet and the collector must show exactly what
the witness saw (the simulated branches) and what the agents recorded (the
rig's), with no seq missing; and the collector's RSS may have grown by at most
5 % after the warm-up (the first quarter, at most 5 minutes). The size of the
collector's snapshot is sampled too: the floor state a day accumulates (finished
tickets remembered per branch, the day's figures) grows it, leak or not. Not
part of CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from branchwatch.config import parse_broker_url
from branchwatch.contract import decode_events, parse_topic
from branchwatch.sim.model import AGENT as SIM_AGENT
from branchwatch.sim.publisher import SimPublisher, SimSettings
from collector.statefile import SNAPSHOT_NAME
from tests.faults.rig import Rig, RigSettings
from tests.faults.truth import Truth, compare
from tests.support import wait_until

MAX_RSS_GROWTH: Final = 0.05
SAMPLE_EVERY: Final = 60.0
BUSY_HOUR: Final = 10.0  # simulated time of day the run starts: the morning rush


class Witness:
    """Every sim event that reached the broker: a truth per branch, the seqs per agent."""

    def __init__(self, broker_port: int) -> None:
        self.truths: dict[tuple[str, str], Truth] = {}
        self.seqs: dict[tuple[str, str], set[int]] = {}
        self.messages = 0
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="soak-witness",
            protocol=MQTTProtocolVersion.MQTTv5,
        )  # fmt: skip
        self.client.on_message = self._message
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", broker_port)
        self.client.subscribe(f"bw/v1/+/+/{SIM_AGENT}/events", qos=1)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, "the witness connected")

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        where = parse_topic(message.topic)
        key = (where.region, where.branch)
        events = decode_events(message.payload)
        with self._lock:
            self.messages += 1
            seen = self.seqs.setdefault(key, set())
            truth = self.truths.setdefault(key, Truth(*key))
            for event in events:
                if event.seq in seen:
                    continue  # a replay the collector asked for
                seen.add(event.seq)
                fields: dict[str, Any] = {
                    name: getattr(event, name) for name in event.__struct_fields__
                }
                truth.add({**fields, "type": event.__struct_config__.tag})

    def events(self) -> int:
        with self._lock:
            return sum(len(seqs) for seqs in self.seqs.values())

    def gaps(self) -> int:
        with self._lock:
            return sum(max(s) - min(s) + 1 - len(s) for s in self.seqs.values() if s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rss_mb(rig: Rig) -> dict[str, float]:
    def of(pid: int | None) -> float:
        if pid is None:
            return 0.0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    sizes = {"collector": rig.collector.rss_bytes() / 2**20, "mosquitto": of(rig.broker.pid)}
    for agent in rig.agents:
        sizes[agent.proc.name] = agent.proc.rss_bytes() / 2**20
    return sizes


def snapshot_kb(rig: Rig) -> float:
    """The collector's state on disk: what its memory holds grows with it over a day."""
    snapshot = rig.state_dir / SNAPSHOT_NAME
    return round(snapshot.stat().st_size / 1024, 1) if snapshot.exists() else 0.0


def soak(workdir: Path, minutes: float, branches: int, speed: float, agents: int) -> dict[str, Any]:
    seconds = minutes * 60
    warm_up = min(300.0, seconds / 4)
    report: dict[str, Any] = {"minutes": minutes, "branches": branches, "speed": speed,
                              "agents": agents, "samples": []}  # fmt: skip
    with Rig(workdir, RigSettings(branches=agents, snapshot_seconds=15.0)) as rig:
        witness = Witness(rig.broker.port)
        settings = SimSettings(broker=parse_broker_url(rig.broker.url), branches=branches,
                               speed=speed, seed=20261130, start_hour=BUSY_HOUR)  # fmt: skip
        sim = SimPublisher(settings)
        stop = threading.Event()
        runner = threading.Thread(target=sim.run, args=(stop, seconds), daemon=True)
        started = time.monotonic()
        runner.start()
        baseline: dict[str, float] | None = None
        state_at_warm_up = 0.0
        next_sample = started
        while runner.is_alive():
            now = time.monotonic()
            if now >= next_sample:
                sample = {"t": round(now - started), "events": witness.events(),
                          "snapshot_kb": snapshot_kb(rig), **rss_mb(rig)}  # fmt: skip
                report["samples"].append(sample)
                print(json.dumps(sample), flush=True)
                next_sample += min(SAMPLE_EVERY, seconds / 8)
            if baseline is None and now - started >= warm_up:
                baseline, state_at_warm_up = rss_mb(rig), snapshot_kb(rig)
            runner.join(1.0)
        elapsed = time.monotonic() - started
        final_rss = rss_mb(rig)
        report["snapshot_kb"] = {"after warm-up": state_at_warm_up, "end": snapshot_kb(rig)}
        report["events_per_second"] = round(witness.events() / elapsed, 1)
        settled = rig.settle(600.0)
        wait_until(lambda: _caught_up(rig, witness), 600, "the collector to reach the witness")
        diff = compare(witness.truths.values(), rig.metrics())
        report["sim"] = {
            "published": sim.stats.events, "at the broker": witness.events(),
            "seq gaps at the broker": witness.gaps(), "expected": diff.expected,
            "counted": diff.counted, "lost": diff.lost, "duplicated": diff.duplicated,
            "wrong posts": diff.wrong_posts,
        }  # fmt: skip
        report["rig"] = {"recorded": settled.recorded, "counted": settled.difference.counted,
                         "lost": settled.difference.lost,
                         "duplicated": settled.difference.duplicated,
                         "wrong posts": settled.difference.wrong_posts}  # fmt: skip
        base = baseline or final_rss
        report["rss_mb"] = {name: {"after warm-up": round(base[name], 1),
                                   "end": round(final_rss[name], 1),
                                   "growth": round(final_rss[name] / base[name] - 1, 4)}
                            for name in base if base[name]}  # fmt: skip
        report["missing_or_lost_per_api"] = _missing(rig)
        witness.close()
    growth = report["rss_mb"]["collector"]["growth"]
    report["pass"] = bool(
        growth <= MAX_RSS_GROWTH
        and diff.exact
        and settled.difference.exact
        and witness.gaps() == 0
        and not report["missing_or_lost_per_api"]
    )
    return report


def _caught_up(rig: Rig, witness: Witness) -> bool:
    """Every simulated agent's last seq applied by the collector."""
    status, body = rig.http.get("/api/v1/branches")
    if status != 200:
        return False
    last = {
        (b["region"], b["branch"]): a["last_seq"]
        for b in json.loads(body)["branches"]
        for a in b["agents"]
        if a["agent"] == SIM_AGENT
    }
    with witness._lock:
        return all(last.get(key) == max(seqs) for key, seqs in witness.seqs.items() if seqs)


def _missing(rig: Rig) -> list[str]:
    """Agents the API says have seqs missing or lost."""
    status, body = rig.http.get("/api/v1/branches")
    assert status == 200, body
    return [
        f"{b['region']}/{b['branch']}/{a['agent']}: {a.get('events_missing')} missing,"
        f" {a.get('events_lost')} lost"
        for b in json.loads(body)["branches"]
        for a in b["agents"]
        if a.get("events_missing") or a.get("events_lost")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--branches", type=int, default=200)
    parser.add_argument("--speed", type=float, default=10.0, help="times real time (default 10)")
    parser.add_argument("--agents", type=int, default=2, help="real agents beside the simulator")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the report (JSON) here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="branchwatch-soak-"))
    report = soak(workdir, args.minutes, args.branches, args.speed, args.agents)
    report["date"] = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
