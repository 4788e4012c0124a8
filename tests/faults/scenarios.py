"""The faults of processes, disks, files, cables and clocks, and the sizes of a run.

(An agent's spool has its own: :mod:`tests.faults.spools`.)

Each breaks one part of a running rig, repairs it, and checks the totals.

A scenario takes a started :class:`~tests.faults.rig.Rig` and a :class:`Size`
and returns an :class:`~tests.faults.report.Outcome`; it leaves the rig running
and whole (every process up, the devices plugged in), so the quick tests can
run several on one rig. Recovery is timed from the repair (the restart, the
space back, the cable in) until the collector counts everything the agents
had recorded by then.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from collector.statefile import SNAPSHOT_NAME
from tests.faults.report import Outcome
from tests.faults.rig import AGENT, STATUS_SECONDS, Rig, Settled
from tests.faults.truth import spool_rows
from tests.support import sample, wait_until

# What the agent may have read but not yet spooled when it dies, plus what the pty holds
# (pyserial flushes a port's input when the restarted agent opens it): its stream reader's
# buffer (2 x 64 KiB before it stops reading), the tty's flip buffers (64 KiB) and 4 KiB.
WIRE_BYTES_AT_A_DEATH: Final = 3 * 64 * 1024 + 4096
SHORTEST_LINE: Final = len(b"ISSUE Q000001 cash\r\n")
LINES_AT_A_DEATH: Final = WIRE_BYTES_AT_A_DEATH // SHORTEST_LINE
MOSQUITTO_DB: Final = "mosquitto.db"  # its persistence file, in persistence_location
# A difference unchanged this long, every spool sent, is final (a loss nothing will repair).
STABLE: Final = 3.0
MQTT_CONNECTED: Final = "branchwatch_collector_mqtt_connected"
SNAPSHOT_FAILURES: Final = "branchwatch_collector_snapshot_failures_total"
SNAPSHOT_LAST_SUCCESS: Final = "branchwatch_collector_snapshot_last_success_timestamp_seconds"


@dataclass(frozen=True)
class Size:
    label: str
    branches: int
    steady: float  # seconds of load before the fault
    outage: float  # seconds the broken part stays broken
    after: float  # seconds of load after the repair, before the final count
    burst: int  # tickets in the agent's burst
    hostile: int  # hostile MQTT payloads
    frames: int  # hostile serial frames per codec
    clients: int  # concurrent HTTP clients
    timeout: float  # for recovery and the final count


QUICK: Final = Size("quick", 1, 0.3, 0.5, 0.3, 3_000, 2_000, 2_000, 100, 30.0)
FULL: Final = Size("full", 3, 20.0, 10.0, 15.0, 20_000, 100_000, 100_000, 1_000, 120.0)


def repaired(rig: Rig, size: Size, outcome: Outcome, since: float) -> None:
    """Time the recovery from ``since`` (the repair) to the collector counting what the
    agents had recorded at that moment."""
    frozen = rig.expected()
    caught_up = rig.caught_up(frozen, size.timeout)
    outcome.recovery = None if caught_up is None else time.monotonic() - since
    outcome.check("recovered", caught_up is not None, "the collector never caught up")


def finish(
    rig: Rig,
    size: Size,
    outcome: Outcome,
    wire_loss_allowed: int = 0,
    stable: float | None = None,
    paused: Callable[[], object] | None = None,
) -> Settled:
    """The load after the repair, then the final count; ``paused`` runs while the devices
    are still quiet (for checks that need the figures to stand still)."""
    rig.wait(size.after)
    settled = rig.settle(size.timeout, stable)
    try:
        if paused is not None:
            paused()
    finally:
        rig.load.resume()
    outcome.settle(settled, wire_loss_allowed)
    return settled


def within(timeout: float, predicate: Callable[[], object], what: str) -> bool:
    """Whether ``predicate`` comes true within ``timeout``: a check, not a broken harness."""
    try:
        wait_until(predicate, timeout, what)
    except AssertionError:
        return False
    return True


# -- the collector ------------------------------------------------------------------------------


def loaded_and_snapshotted(rig: Rig, size: Size) -> Path:
    """The load's steady time, and a snapshot written: its path."""
    rig.wait(size.steady)
    snapshot = rig.state_dir / SNAPSHOT_NAME
    wait_until(snapshot.exists, 10, "a first snapshot")
    return snapshot


def collector_kill9(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("collector kill -9 mid-stream, restarted with its snapshot")
    loaded_and_snapshotted(rig, size)
    rig.collector.kill9()
    rig.wait(size.outage)  # the agents go on; the broker queues for the collector's session
    since = time.monotonic()
    rig.start_collector()
    repaired(rig, size, outcome, since)
    log = rig.collector.log()
    outcome.saw(log, r"restored \d+ branches", "collector log")
    outcome.saw(log, r"asked \d+ agents to replay", "collector log")
    finish(rig, size, outcome)
    return outcome


def collector_kill9_without_snapshot(rig: Rig, size: Size) -> Outcome:
    """A collector with no state for an agent asks it to replay its day, and rebuilds."""
    outcome = Outcome("collector kill -9, restarted without its snapshot (lost disk)")
    rig.wait(size.steady)
    rig.collector.kill9()
    for path in rig.state_dir.glob(SNAPSHOT_NAME + "*"):
        path.unlink()
    rig.wait(size.outage)
    since = time.monotonic()
    rig.start_collector()
    repaired(rig, size, outcome, since)
    log = rig.collector.log()
    outcome.saw(log, "no snapshot in", "collector log")
    outcome.saw(log, "rebuilt from the replay", "collector log")
    finish(rig, size, outcome)
    return outcome


def state_dir_full(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("collector state dir full: snapshots fail, then a kill -9 and a restart")
    snapshot = loaded_and_snapshotted(rig, size)
    failures_before = collector_metric(rig, SNAPSHOT_FAILURES)
    rig.collector.limit_file_size(1)  # no write may grow a file: what a full disk does
    wait_until(lambda: "cannot write snapshot" in rig.collector.log(), 10, "the failure logged")
    # Read once no snapshot can succeed: one may have been written since the load's.
    kept = snapshot.read_bytes()
    outcome.saw(rig.collector.log(), "cannot write snapshot", "collector log (every interval)")
    last_success = collector_metric(rig, SNAPSHOT_LAST_SUCCESS)
    rig.wait(size.outage)
    failed = collector_metric(rig, SNAPSHOT_FAILURES) - failures_before
    outcome.figures["snapshots failed while full"] = f"{failed:g} in {size.outage:g} s"
    outcome.check("the snapshot failure metric rises while full", failed >= 1, f"+{failed:g}")
    outcome.check(
        "the last-success timestamp stands still while full",
        collector_metric(rig, SNAPSHOT_LAST_SUCCESS) == last_success,
    )
    outcome.seen.append(f"metric: {SNAPSHOT_FAILURES} rising, {SNAPSHOT_LAST_SUCCESS} still")
    outcome.check("the old snapshot is kept as it was", snapshot.read_bytes() == kept)
    # The worst moment to die: the disk still full, the last good snapshot old.
    rig.collector.kill9()
    rig.wait(size.outage)
    since = time.monotonic()
    rig.start_collector()  # fsize_limit still set: the new process sees a full disk too
    repaired(rig, size, outcome, since)
    restarted_at = collector_metric(rig, SNAPSHOT_LAST_SUCCESS)
    outcome.check(
        "restarted, the last success is the kept snapshot's time",
        abs(restarted_at - snapshot.stat().st_mtime) < 1,
        f"{restarted_at:.1f} against the file's {snapshot.stat().st_mtime:.1f}",
    )
    # Stopped while full (systemctl stop): its last snapshot cannot be written either.
    code = rig.collector.term()
    log = rig.collector.log()
    outcome.check("stopped while full, it exits 1 and says why", code == 1, f"exit {code}")
    outcome.check("no traceback in the collector's log", "Traceback" not in log)
    outcome.saw(log, "error:", "collector's last words")
    rig.start_collector()
    rig.collector.limit_file_size(None)  # space is back
    wait_until(lambda: snapshot.read_bytes() != kept, 15, "a snapshot written again")
    outcome.check("snapshots resume when space returns", snapshot.read_bytes() != kept)
    outcome.check(
        "the last-success timestamp moves again",
        within(10, lambda: collector_metric(rig, SNAPSHOT_LAST_SUCCESS) > last_success, "it"),
    )
    finish(rig, size, outcome)
    return outcome


def corrupt_snapshot(rig: Rig, size: Size) -> Outcome:
    """Set aside, logged, and the floor rebuilt from the agents' replays."""
    outcome = Outcome("corrupt collector snapshot at start")
    snapshot = loaded_and_snapshotted(rig, size)
    rig.collector.kill9()
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)  # the second half garbage
    snapshot.write_bytes(bytes(data))
    since = time.monotonic()
    rig.start_collector()
    log = rig.collector.log()
    outcome.check("the snapshot was set aside", any(rig.state_dir.glob(SNAPSHOT_NAME + ".bad-*")))
    outcome.check("the reason is logged", outcome.saw(log, "snapshot unusable", "collector log"))
    repaired(rig, size, outcome, since)
    outcome.saw(rig.collector.log(), "rebuilt from the replay", "collector log")
    finish(rig, size, outcome)
    return outcome


# -- the broker ---------------------------------------------------------------------------------


def broker_kill9(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("Mosquitto kill -9 (persistence on), restarted")
    rig.wait(size.steady)
    rig.kill_broker()
    outcome.check(
        "the collector says it is disconnected",
        wait_until(
            lambda: "disconnected from" in rig.collector.log(), 10, "the collector to notice"
        ),
    )
    outcome.saw(rig.collector.log(), "disconnected from", "collector log")
    rig.wait(size.outage)  # agents spool; nothing reaches anyone
    outcome.saw(rig.agents[0].proc.log(), "retrying in", "agent log")
    since = time.monotonic()
    rig.broker.start()
    repaired(rig, size, outcome, since)
    # What it had read before the kill may hold everything the agents recorded by then:
    # caught up is no proof of a connection.
    outcome.check(
        "the collector is connected again",
        within(size.timeout, lambda: collector_metric(rig, MQTT_CONNECTED) == 1, "connected"),
    )
    finish(rig, size, outcome)
    return outcome


def broker_restart_without_persistence(rig: Rig, size: Size) -> Outcome:
    """The broker comes back without its persistence file (lost disk, a fresh node) while
    the collector is away: its session and what the broker queued for it are gone, and the
    branches are quiet, so no later event reveals the gap: the collector must ask every
    agent for a replay when it finds its session gone."""
    outcome = Outcome("Mosquitto restarted without its persistence (session lost), quiet")
    rig.wait(size.steady)
    rig.collector.freeze()  # away, not restarted: no snapshot restore to ask for replays
    rig.wait(size.outage)  # the broker queues what the agents send for the collector
    rig.load.pause()  # the branches go quiet from here on
    rig.broker.stop()
    (rig.broker.workdir / MOSQUITTO_DB).unlink()
    rig.broker.start()  # no sessions, no queues
    since = time.monotonic()
    rig.collector.thaw()
    # What it had read before the freeze may already hold everything: the catching up is
    # the reconnect and the replays it asks for, not the counters reaching the figures.
    asked = within(
        size.timeout, lambda: "lost our session" in rig.collector.log(), "the replays asked"
    )
    repaired(rig, size, outcome, since)
    log = rig.collector.log()
    outcome.saw(log, r"session present: False", "collector log")
    outcome.check("it asked for replays as its session was lost", asked)
    outcome.saw(log, "lost our session", "collector log")
    settled = rig.settle(size.timeout, stable=STABLE)
    outcome.settle(settled)
    rig.load.resume()
    return outcome


# -- the agent ----------------------------------------------------------------------------------


def agent_kill9_burst(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("agent kill -9 during a burst")
    agent = rig.agents[0]
    rig.wait(size.steady)
    before = agent.recorded().issued.total()
    burst = asyncio.run_coroutine_threadsafe(agent.branch.burst(size.burst), rig.load.loop)
    wait_until(lambda: agent.recorded().issued.total() >= before + 50, 30, "burst under way")
    last_seq = spool_seqs(agent.spool)[1]
    missing_before = _missing(rig)
    agent.proc.kill9()
    in_burst = agent.recorded().issued.total() - before
    outcome.check("the kill landed mid-burst", 0 < in_burst < size.burst, f"{in_burst} recorded")
    outcome.figures["burst"] = f"{size.burst:,} tickets; {in_burst:,} recorded before the kill"
    rig.wait(size.outage)  # the devices go on talking to nobody (the queue waits on its line)
    since = time.monotonic()
    agent.proc.start()
    repaired(rig, size, outcome, since)
    burst.result(size.timeout)
    wait_until(lambda: spool_seqs(agent.spool)[1] > last_seq, 30, "an event after the restart")
    first, last, held = spool_seqs(agent.spool)
    outcome.check(
        "the seq continues after the restart, no gap, none reused",
        held == last - first + 1,
        f"seqs {first}..{last}, {held} held",
    )
    missing = _missing(rig) - missing_before
    outcome.check("no seq gap at the collector", missing == 0, f"{missing} missing")
    outcome.saw(agent.proc.log(), r"agent north/\S+: \d devices", "agent log at restart")
    finish(rig, size, outcome, wire_loss_allowed=LINES_AT_A_DEATH)
    return outcome


# -- the devices and the clock -----------------------------------------------------------------


def serial_unplug(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("serial device unplugged and plugged back in")
    branch = rig.agents[0].branch
    rig.wait(size.steady)
    rig.load.call(branch.unplug("queue"))
    labels = {"region": branch.region, "branch": branch.branch, "agent": AGENT, "device": "queue"}

    def link_down() -> float | None:
        return sample(rig.metrics(), "branchwatch_device_fault", **labels, fault="link_down")

    outcome.check(
        "the collector shows the link down",
        wait_until(lambda: link_down() == 1, 15, "device_fault link_down"),
    )
    outcome.seen.append('metric: branchwatch_device_fault{fault="link_down"} 1 (the fault event)')
    outcome.saw(rig.agents[0].proc.log(), "device queue: link down", "agent log")
    rig.wait(size.outage)
    since = time.monotonic()
    rig.load.call(branch.plug("queue"))
    wait_until(lambda: link_down() == 0, size.timeout, "the link back up")
    outcome.recovery = time.monotonic() - since
    outcome.saw(rig.agents[0].proc.log(), "device queue: link up again", "agent log")
    finish(rig, size, outcome)
    return outcome


def clock_back(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("branch PC clock stepped back an hour")
    agent = rig.agents[0]
    rig.wait(size.steady)
    labels = {"region": agent.branch.region, "branch": agent.branch.branch, "agent": AGENT}

    def last_seen() -> float:
        return sample(rig.metrics(), "branchwatch_agent_last_seen_timestamp_seconds", **labels) or 0

    seen_before = last_seen()
    from_seq = spool_seqs(agent.spool)[1]
    signal_agents(rig, signal.SIGUSR1)
    waited = rig.timed_wait(max(size.outage, 2 * STATUS_SECONDS))  # past a status or two
    advanced = last_seen() - seen_before
    outcome.figures["agent last seen advanced after the step"] = (
        f"{advanced:+.1f} s in {waited:.1f} s"
    )
    outcome.check(
        "the agent is not silent: its last seen moves on (receive time)",
        advanced >= waited / 2,
        f"{advanced:+.1f} s in {waited:.1f} s",
    )
    outcome.saw(agent.proc.log(), "system clock went back", "agent log")
    settled = finish(rig, size, outcome)
    stamps = [ts for (ts,) in spool_rows(
        agent.spool, "SELECT ts FROM events WHERE seq >= ? ORDER BY seq", from_seq)]  # fmt: skip
    back = sum(1 for a, b in itertools.pairwise(stamps) if b < a)
    outcome.check(
        "the agent's event times never went back",
        len(stamps) > 1 and back == 0,
        f"{back} of {len(stamps)} stamps earlier than the one before",
    )
    produced = sum(t.countable for t in rig.produced())
    outcome.check(
        "the agents recorded every event",
        settled.recorded == settled.heard,
        f"{settled.recorded} of {produced}",
    )
    signal_agents(rig, signal.SIGUSR2)  # put right again: the rig goes on in real time
    return outcome


# -- helpers ------------------------------------------------------------------------------------


def _missing(rig: Rig) -> float:
    return collector_metric(rig, "branchwatch_collector_events_missing_total")


def collector_metric(rig: Rig, name: str) -> float:
    return sample(rig.metrics(), name) or 0.0


def signal_agents(rig: Rig, signum: int) -> None:
    for agent in rig.agents:
        pid = agent.proc.pid
        assert pid is not None, f"{agent.proc.name} is not running"
        os.kill(pid, signum)


def spool_integrity(spool: Path) -> str:
    return str(spool_rows(spool, "PRAGMA integrity_check")[0][0])


def spool_seqs(spool: Path) -> tuple[int, int, int]:
    """(first seq, last seq, events held) of an agent's spool."""
    rows = spool_rows(
        spool, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0), count(*) FROM events"
    )
    first, last, held = rows[0] if rows else (0, 0, 0)
    return int(first), int(last), int(held)
