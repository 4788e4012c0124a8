"""``python -m tests.faults.soak`` (``make soak``): a long run at ten times a busy branch's rate.

The simulator (in this process) plays BRANCHES branches in short business days
(:mod:`tests.faults.soakrate`: open 11:00-12:30, a 5-minute night, at the speed
that makes each branch send ten times what a busy branch sends), beside a rig of
real agents with emulated devices at that same rate; a witness subscriber counts
every event that reached the broker and the days each branch has begun. The
resident memory of the collector, Mosquitto and the agents and the size of the
collector's snapshot are sampled every SAMPLE_EVERY seconds and at the start of
each day (once every simulated branch has opened it). At the end the branches go
quiet and the collector must show exactly what the witness saw (the simulated
branches) and what the agents recorded (the rig's), with no seq missing; and the
collector's RSS at the start of the last day begun may be at most 5 % above its
RSS at the start of day 2: the same point of the day, the first day (the
warm-up) and its state whole behind both, so what a day legitimately holds
(finished tickets, the day's figures, reset at each opening) does not count as
growth, a leak does. A run too short for two days after the first (SOAK_MINUTES=2)
shows its end against the end of its first quarter, but judges only the loss: a
day's state still grows there. Not part of CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
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
from branchwatch.contract.events import BranchOpened
from branchwatch.sim.model import AGENT as SIM_AGENT
from branchwatch.sim.publisher import SimPublisher, SimSettings
from collector.statefile import SNAPSHOT_NAME
from tests.faults.load import Rates
from tests.faults.rig import Rig, RigSettings
from tests.faults.soakrate import DAY_HOURS, NIGHT_MINUTES, SoakRate, soak_rate
from tests.faults.truth import Truth, compare
from tests.support import wait_until

MAX_RSS_GROWTH: Final = 0.05
SAMPLE_EVERY: Final = 30.0
SEED: Final = 20261130


class Witness:
    """Every sim event that reached the broker: a truth per branch, the seqs per agent."""

    def __init__(self, broker_port: int) -> None:
        self.truths: dict[tuple[str, str], Truth] = {}
        self.seqs: dict[tuple[str, str], set[int]] = {}
        self.days: dict[tuple[str, str], int] = {}  # branch.opened seen per branch
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
                if isinstance(event, BranchOpened):
                    self.days[key] = self.days.get(key, 0) + 1
                fields: dict[str, Any] = {
                    name: getattr(event, name) for name in event.__struct_fields__
                }
                truth.add({**fields, "type": event.__struct_config__.tag})

    def events(self) -> int:
        with self._lock:
            return sum(len(seqs) for seqs in self.seqs.values())

    def days_begun(self, branches: int) -> int:
        """The days every one of ``branches`` simulated branches has begun."""
        with self._lock:
            return min(self.days.values()) if len(self.days) >= branches else 0

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


def soak(
    workdir: Path, minutes: float, branches: int, agents: int, rate: SoakRate
) -> dict[str, Any]:
    seconds = minutes * 60
    report: dict[str, Any] = {"minutes": minutes, "branches": branches, "agents": agents,
                              "rate": rate.describe(), "speed": round(rate.speed, 2),
                              "samples": [], "day_starts": []}  # fmt: skip
    settings = RigSettings(branches=agents, snapshot_seconds=15.0, rates=rig_rates(rate))
    with Rig(workdir, settings) as rig:
        witness = Witness(rig.broker.port)
        sim_settings = SimSettings(
            broker=parse_broker_url(rig.broker.url), branches=branches, speed=rate.speed,
            seed=SEED, start_hour=DAY_HOURS[0], day_hours=DAY_HOURS, night_minutes=NIGHT_MINUTES,
        )  # fmt: skip
        sim = SimPublisher(sim_settings)
        stop = threading.Event()
        runner = threading.Thread(target=sim.run, args=(stop, seconds), daemon=True)
        started = time.monotonic()
        runner.start()
        next_sample, day = started, 1

        def take(**extra: int) -> dict[str, Any]:
            taken = {"t": round(time.monotonic() - started), **extra, "events": witness.events(),
                     "snapshot_kb": snapshot_kb(rig), **rss_mb(rig)}  # fmt: skip
            print(json.dumps(taken), flush=True)
            return taken

        while runner.is_alive():
            begun = witness.days_begun(branches)
            if begun > day:  # every branch has opened a new day: the same point of each day
                day = begun
                report["day_starts"].append(take(day=day))
            if time.monotonic() >= next_sample:
                report["samples"].append(take())
                next_sample += SAMPLE_EVERY
            runner.join(0.5)
        elapsed = time.monotonic() - started
        report["samples"].append(take())
        report["events_per_second"] = round(witness.events() / elapsed, 1)
        report["events_per_second_per_branch"] = round(witness.events() / elapsed / branches, 3)
        report["memory"] = memory(report, seconds)
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
        report["missing_or_lost_per_api"] = _missing(rig)
        witness.close()
    memory_ok = (
        not report["memory"]["judged"]
        or report["memory"]["rss_mb"]["collector"]["growth"] <= MAX_RSS_GROWTH
    )
    report["pass"] = bool(
        memory_ok
        and diff.exact
        and settled.difference.exact
        and witness.gaps() == 0
        and not report["missing_or_lost_per_api"]
    )
    return report


def memory(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """RSS growth from the start of day 2 to the start of the last day begun (or, in a run
    too short for that, from the end of its first quarter to its end: not judged)."""
    starts = report["day_starts"]
    if len(starts) >= 2:
        base, end = starts[0], starts[-1]
        how = f"start of day {base['day']} -> start of day {end['day']}"
    else:
        quarter = [s for s in report["samples"] if s["t"] >= seconds / 4]
        base, end = (quarter or report["samples"])[0], report["samples"][-1]
        how = "too short for two days: end of the first quarter -> end (not judged)"
    names = [name for name in base if name in end and name not in ("t", "day", "events")]
    return {
        "compared": how,
        "judged": len(starts) >= 2,
        "t": [base["t"], end["t"]],
        "snapshot_kb": [base["snapshot_kb"], end["snapshot_kb"]],
        "rss_mb": {
            name: grown(base[name], end[name])
            for name in names
            if name != "snapshot_kb" and base[name]
        },
    }


def grown(base: float, end: float) -> dict[str, float]:
    return {"base": round(base, 1), "end": round(end, 1), "growth": round(end / base - 1, 4)}


def rig_rates(rate: SoakRate) -> Rates:
    """The rig's devices at the simulated branches' rate: half the events from the queue
    (4 per ticket), a quarter from the pad (2 per evaluation), a quarter from the intercom."""
    return Rates(
        tickets=rate.per_branch / 2 / 4,
        evaluations=rate.per_branch / 4 / 2,
        staff_moves=rate.per_branch / 4,
    )


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
    parser.add_argument("--agents", type=int, default=2, help="real agents beside the simulator")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the report (JSON) here")
    args = parser.parse_args(argv)
    rate = soak_rate(SEED)
    print(rate.describe(), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="branchwatch-soak-"))
    started = datetime.datetime.now(datetime.UTC)
    report = soak(workdir, args.minutes, args.branches, args.agents, rate)
    report["date"] = f"{started:%Y-%m-%d %H:%M} UTC"
    report["load_average"] = [round(x, 2) for x in os.getloadavg()]
    del report["samples"]  # printed as they were taken
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
