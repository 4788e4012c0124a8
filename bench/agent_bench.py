"""Agent footprint and drain rate: ``python -m bench.agent_bench`` (or ``make bench-agent``).

Measures a real ``branchwatch agent run`` process against a Mosquitto of our own:

- RSS and idle CPU with 4 devices: queue-line, evaluator-frame and intercom-line
  on ptys (what a USB-serial port looks like to the agent), and the http kind;
- backlog drain: a spool pre-filled with N events while no broker runs (through the
  agent's own core, so payloads and seq are real), then the time from connecting
  to an empty spool (every event acknowledged by the broker).

Targets of issue 3: RSS <= 60 MB, idle CPU <= 1 %, drain >= 2,000 events/s.
Exits non-zero if one is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.core import AgentCore
from agent.devices.base import DeviceConfig
from agent.devices.queue_line import QueueLineCodec
from agent.devices.stream import deliver
from agent.spool import Spool
from branchwatch.broker import EmbeddedBroker, free_port

RSS_TARGET_MB = 60.0
IDLE_CPU_TARGET = 1.0
DRAIN_TARGET = 2000.0
TICKS = os.sysconf("SC_CLK_TCK")


def config_text(broker: str, spool: Path, devices: str) -> str:
    return (
        'region = "bench"\nbranch = "b1"\nagent = "agent-1"\n'
        f'[mqtt]\nbroker = "{broker}"\nreconnect_min_seconds = 0.1\nreconnect_max_seconds = 0.5\n'
        f'[spool]\npath = "{spool}"\n{devices}'
    )


def four_devices(workdir: Path) -> tuple[str, list[int]]:
    """Three pty-backed serial devices and one http device; the pty masters to keep open."""
    masters, tables = [], []
    kinds = [("queue-1", "queue-line", ""), ("pad-1", "evaluator-frame", 'counter = "c1"'),
             ("intercom-1", "intercom-line", "")]  # fmt: skip
    for device_id, protocol, options in kinds:
        master, slave = os.openpty()
        masters.append(master)
        tables.append(
            f'[[devices]]\nid = "{device_id}"\nprotocol = "{protocol}"\n'
            f'url = "{os.ttyname(slave)}"\noptions = {{ {options} }}\n'
        )
    token = workdir / "token"
    token.write_text("bench-token\n")
    token.chmod(0o600)
    tables.append(
        f'[[devices]]\nid = "qms"\nprotocol = "http"\nurl = "127.0.0.1:{free_port()}"\n'
        f'options = {{ token_file = "{token}" }}\n'
    )
    return "".join(tables), masters


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        argv = [sys.executable, "-m", "branchwatch", "agent", "run", "--config", str(config)]
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def footprint(
    broker: EmbeddedBroker, workdir: Path, settle: float, window: float
) -> tuple[float, float]:
    devices, masters = four_devices(workdir)
    config = workdir / "footprint.toml"
    config.write_text(config_text(broker.url, workdir / "footprint.db", devices))
    proc = start_agent(config, workdir / "footprint.log")
    try:
        time.sleep(settle)  # start-up: imports, connect, first status
        if proc.poll() is not None:
            raise SystemExit((workdir / "footprint.log").read_text())
        before, started = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        cpu = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started) * 100
        return rss_mb(proc.pid), cpu
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        for master in masters:
            os.close(master)


class _Slot:
    device_id = "queue-1"

    def bad_frame(self, reason: str, detail: str = "") -> None:
        raise AssertionError(f"bench event refused: {reason} {detail}")


def prefill(path: Path, events: int) -> float:
    """Spool ``events`` realistic events through the agent's own path (queue-line codec,
    its one contract check, stamp, spool); events/s."""
    started = time.perf_counter()
    with Spool(path) as spool:
        core = AgentCore((DeviceConfig(id="queue-1", protocol="none"),), spool, {})
        slot = core.slots["queue-1"]
        codec = QueueLineCodec(slot.now)
        for i in range(events):
            deliver(slot, codec.feed(bytearray(b"ISSUE A%05d cash\n" % (i % 100000))))
    return events / (time.perf_counter() - started)


def unsent(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM events WHERE sent = 0").fetchone()[0])
    finally:
        db.close()


def drain(broker: EmbeddedBroker, workdir: Path, events: int) -> tuple[float, float, float]:
    """(emit rate into the spool, drain events/s from the first PUBACK to empty, seconds)."""
    spool = workdir / "drain.db"
    emit_rate = prefill(spool, events)
    config = workdir / "drain.toml"
    config.write_text(config_text(broker.url, spool, ""))
    started = time.monotonic()
    proc = start_agent(config, workdir / "drain.log")
    try:
        first = None
        while (left := unsent(spool)) > 0:
            if first is None and left < events:
                first = (time.monotonic(), left)
            if proc.poll() is not None or time.monotonic() - started > 120:
                raise SystemExit((workdir / "drain.log").read_text())
            time.sleep(0.01)
        done = time.monotonic()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    t0, left0 = first or (started, events)
    return emit_rate, left0 / max(done - t0, 1e-6), done - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="backlog to drain")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="CPU sampling window")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bw-agent-bench-") as tmp, \
            EmbeddedBroker("mosquitto", persistent=False) as broker:  # fmt: skip
        workdir = Path(tmp)
        print(f"broker: mosquitto on {broker.url}", flush=True)
        rss, cpu = footprint(broker, workdir, settle=3.0, window=args.idle_seconds)
        print(f"footprint measured (idle window {args.idle_seconds:g} s)", flush=True)
        emit_rate, rate, total = drain(broker, workdir, args.events)
    rows = [
        ("RSS, 4 devices (MB)", f"{rss:.1f}", f"<= {RSS_TARGET_MB:g}", rss <= RSS_TARGET_MB),
        ("idle CPU (%)", f"{cpu:.2f}", f"<= {IDLE_CPU_TARGET:g}", cpu <= IDLE_CPU_TARGET),
        (f"drain {args.events:,} events (events/s)", f"{rate:,.0f}", f">= {DRAIN_TARGET:,.0f}",
         rate >= DRAIN_TARGET),
    ]  # fmt: skip
    print(f"\n{'measure':<36} {'value':>10}  {'target':<10} result")
    for name, value, target, ok in rows:
        print(f"{name:<36} {value:>10}  {target:<10} {'ok' if ok else 'MISSED'}")
    print(f"(drain including process start and connect: {args.events / total:,.0f} events/s;")
    print(f" emit -> validated, stamped, committed to the spool: {emit_rate:,.0f} events/s)")
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
