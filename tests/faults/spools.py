"""The faults of an agent's spool: its disk full, the file corrupt, the file replaced.

Each checks what the agent does by itself (refuse and count, set aside, start a fresh
spool above the old one's seqs) and what the collector shows of it (the refused count,
the new spool, what was lost with the old one), with the totals exact for everything
the spools hold that could still reach the collector.
"""

from __future__ import annotations

import time
from typing import Any, Final

from branchwatch.contract.seqs import NEW_SPOOL_JUMP, fresh_seq_base
from tests.faults.report import Outcome
from tests.faults.rig import AGENT, AgentRig, EarlierSpool, Rig
from tests.faults.scenarios import (
    LINES_AT_A_DEATH,
    Size,
    finish,
    repaired,
    spool_integrity,
    spool_seqs,
    within,
)
from tests.faults.truth import copy_spool, spool_rows, unsent
from tests.support import sample, wait_until

REFUSED: Final = "branchwatch_agent_events_refused_total"
GARBAGE: Final = b"\x00garbage, not SQLite" * 5  # over the header: "file is not a database"
# The agent's own events about its devices (links): no device line stands behind them.
OWN_EVENTS: Final = "device.%"
# How long the count of stored events must stand still, the devices quiet, to be final.
QUIET: Final = 1.0


def spool_disk_full(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("agent spool disk full, then space returns")
    agent = rig.agents[0]
    rig.wait(size.steady)
    agent.proc.restart_on_failure = True  # as systemd's Restart=on-failure: an exit would show
    pid, exits = agent.proc.pid, len(agent.proc.exit_codes)
    rig.load.pause()  # a line heard but not yet stored would count as refused
    heard_before, stored_before = quiet_counts(agent)
    refused_before = refused(rig, agent)
    # No file may grow past the database's size now: the database cannot grow at all, and
    # the write-ahead log (larger by now) is cut to that size too: a full disk, or worse.
    agent.proc.limit_file_size(agent.spool.stat().st_size)
    rig.load.resume()
    outcome.check(
        "events are refused while the disk is full",
        within(size.timeout, lambda: refused(rig, agent) > refused_before, "a refused event"),
    )
    rig.wait(size.outage)
    since = time.monotonic()
    last_seq = spool_seqs(agent.spool)[1]
    agent.proc.limit_file_size(None)
    outcome.check(
        "it stores events again when space returns",
        within(size.timeout, lambda: spool_seqs(agent.spool)[1] > last_seq, "an event stored"),
    )
    repaired(rig, size, outcome, since)
    rig.wait(size.after)
    settled = rig.settle(size.timeout)
    heard_after, stored_after = quiet_counts(agent)
    heard, stored = heard_after - heard_before, stored_after - stored_before
    want = heard - stored  # what the devices said and the spool did not take
    counted = within(10, lambda: refused(rig, agent) - refused_before == want, "the refused count")
    rig.load.resume()
    got = int(refused(rig, agent) - refused_before)
    outcome.figures["while the disk was full and after"] = (
        f"the devices sent {heard:,} events, the spool stored {stored:,}, the agent refused"
        f" {got:,} (branchwatch_agent_events_refused_total; API events_refused"
        f" {rig.agent_view(agent.branch.branch).get('events_refused')})"
    )
    outcome.check(
        "the refused count is what the devices sent and the spool did not take",
        counted,
        f"refused {got}, the tally says {want}",
    )
    outcome.check(
        "the agent kept running (same process, no exit)",
        agent.proc.pid == pid and len(agent.proc.exit_codes) == exits,
        f"pid {pid} -> {agent.proc.pid}, exits {agent.proc.exit_codes[exits:]}",
    )
    agent.proc.restart_on_failure = False
    log = agent.proc.log(tail=200_000)
    outcome.saw(log, "event refused", "agent log (once a minute)")
    outcome.saw(log, "spool stores events again", "agent log")
    outcome.check("no traceback in the agent's log", "Traceback" not in log)
    integrity = spool_integrity(agent.spool)
    outcome.check("the spool is not corrupt", integrity == "ok", integrity)
    # Refused events are heard and not recorded: they may not pass for a loss on the wire.
    outcome.settle(settled, wire_loss_allowed=max(got, 0))
    return outcome


def stopped_agent(rig: Rig, size: Size) -> tuple[AgentRig, dict[str, Any]]:
    """The first branch's agent, stopped cleanly after the load's steady time, and the API's
    view of it once its offline status is in (after every event it had published)."""
    agent = rig.agents[0]
    rig.wait(size.steady)

    def followed() -> bool:  # events applied, no longer held for a first replay
        view = rig.agent_view(agent.branch.branch)
        return view.get("last_seq") is not None and not view.get("rebuilding")

    wait_until(followed, size.timeout, "the collector to follow the agent")
    assert agent.proc.term() == 0
    wait_until(
        lambda: rig.agent_view(agent.branch.branch).get("up") is False,
        size.timeout,
        "the collector to take the agent's offline status",
    )
    return agent, rig.agent_view(agent.branch.branch)


def new_spool_recognisable(old_last: int) -> float:
    """Wait until a spool made now starts far enough above ``old_last`` for the collector to
    see a new spool (a jump of more than 2**20 seqs); the seconds waited.

    Known limit, reported: the base is the Unix second << 20, so a spool replaced within
    about a second of the old one's creation jumps less and is read as a gap of ~10**6.
    """
    started = time.monotonic()
    wait_until(
        lambda: fresh_seq_base(time.time()) + 1 - old_last > NEW_SPOOL_JUMP,
        5,
        "a second past the old spool's creation",
    )
    return time.monotonic() - started


def started(rig: Rig, agent: AgentRig, size: Size) -> None:
    agent.proc.start()
    wait_until(rig.load.connected, size.timeout, "the agent back on its devices")


def corrupt_spool(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome("corrupt agent spool at start")
    agent, before = stopped_agent(rig, size)
    # The old spool as it was, for the tally: what it sent is counted, the rest went with it.
    copy = copy_spool(agent.spool, agent.spool.with_name(f"before-{len(agent.earlier)}.db"))
    agent.earlier.append(EarlierSpool(copy, before["last_seq"] or 0))
    old_last, unsent_then = spool_seqs(copy)[1], unsent(copy)
    with agent.spool.open("r+b") as db:
        db.write(GARBAGE)
    new_spool_recognisable(old_last)
    agent.proc.restart_on_failure = True
    exits = len(agent.proc.exit_codes)
    since = time.monotonic()
    started(rig, agent, size)
    pid = agent.proc.pid
    aside = [p for p in agent.spool.parent.glob("spool.db.corrupt-*") if not p.name.endswith(
        ("-wal", "-shm"))]  # fmt: skip
    outcome.check(
        "the agent set the corrupt file aside (spool.db.corrupt-<UTC time>)",
        any(path.read_bytes().startswith(GARBAGE) for path in aside),
        f"{[path.name for path in aside]}",
    )
    log = agent.proc.log()
    outcome.check(
        "its log says so and what was lost", outcome.saw(log, "is corrupt .*moved to", "agent log")
    )
    outcome.saw(log, "is new: seqs start at", "agent log")
    repaired(rig, size, outcome, since)
    wait_until(lambda: spool_seqs(agent.spool)[2], size.timeout, "an event in the new spool")
    first = spool_seqs(agent.spool)[0]
    outcome.check(
        "the fresh spool's seqs start above the old one's",
        first > old_last,
        f"{first} after {old_last}",
    )
    finish(
        rig, size, outcome, wire_loss_allowed=LINES_AT_A_DEATH,
        paused=lambda: new_spool_shown(rig, agent, before, outcome),
    )  # fmt: skip
    outcome.check(
        "the agent ran on (same process, no exit)",
        agent.proc.pid == pid and len(agent.proc.exit_codes) == exits,
        f"exits {agent.proc.exit_codes[exits:]}",
    )
    agent.proc.restart_on_failure = False
    gone = old_last - (before["last_seq"] or 0)
    outcome.figures["events the corrupt spool had not sent / gone with it"] = (
        f"{unsent_then} / {gone} ({agent.gone_with_spools()} countable, all spools so far)"
    )
    outcome.check(
        "no more is lost than its unsent events (the documented bound)",
        0 <= gone <= unsent_then,
        f"{gone} gone, {unsent_then} unsent",
    )
    return outcome


def spool_replaced(rig: Rig, size: Size) -> Outcome:
    """A fresh spool in place of the old one: its seqs start above the old one's."""
    outcome = Outcome("agent spool replaced by a fresh one (new disk, reinstalled PC)")
    agent, before = stopped_agent(rig, size)
    aside = agent.spool.with_name(f"spool.db.aside-{len(agent.earlier)}")
    agent.spool.replace(aside)
    for suffix in ("-wal", "-shm"):
        agent.spool.with_name(agent.spool.name + suffix).unlink(missing_ok=True)
    agent.earlier.append(EarlierSpool(aside, before["last_seq"] or 0))
    old_last = spool_seqs(aside)[1]
    new_spool_recognisable(old_last)
    since = time.monotonic()
    started(rig, agent, size)
    repaired(rig, size, outcome, since)

    def shown() -> None:
        outcome.figures["seq: the old spool's last / the new one's first and last"] = (
            "{} / {} and {}".format(old_last, *spool_seqs(agent.spool)[:2])
        )
        new_spool_shown(rig, agent, before, outcome)

    finish(rig, size, outcome, wire_loss_allowed=LINES_AT_A_DEATH, paused=shown)
    return outcome


def new_spool_shown(rig: Rig, agent: AgentRig, before: dict[str, Any], outcome: Outcome) -> None:
    """The API shows the agent's new spool, and counts as lost only the old spool's seqs it
    still missed (its last events, never heard of, it cannot know)."""
    view = rig.agent_view(agent.branch.branch)
    first, last, _ = spool_seqs(agent.spool)
    outcome.figures["the API's view of the agent"] = (
        f"spools_started {view.get('spools_started')}, spool_first_seq"
        f" {view.get('spool_first_seq')}, last_seq {view.get('last_seq')}, events_lost"
        f" {view.get('events_lost')}, events_missing {view.get('events_missing')}"
    )
    outcome.check(
        "the collector shows the new spool (spools_started + 1, its first and last seq)",
        view.get("spools_started") == before["spools_started"] + 1
        and view.get("spool_first_seq") == first
        and view.get("last_seq") == last,
        f"spool holds {first}..{last}",
    )
    lost = view.get("events_lost", 0) - before["events_lost"]
    outcome.check(
        "counted lost: exactly the old spool's seqs it still missed",
        lost == before["events_missing"],
        f"{lost} lost, {before['events_missing']} were missing",
    )
    outcome.saw(rig.collector.log(), "began a new spool", "collector log")


# -- the tally ---------------------------------------------------------------------------------


def refused(rig: Rig, agent: AgentRig) -> float:
    labels = {"region": agent.branch.region, "branch": agent.branch.branch, "agent": AGENT}
    return sample(rig.metrics(), REFUSED, **labels) or 0.0


def heard_items(agent: AgentRig) -> int:
    """Lines the agent's devices sent while it had their ports open (one event each)."""
    return sum(len(d.sent) - len(d.unheard) for d in agent.branch.devices.values())


def stored_items(agent: AgentRig) -> int:
    """Events from device lines in the agent's current spool."""
    rows = spool_rows(
        agent.spool,
        "SELECT count(*) FROM events WHERE json_extract(payload, '$.type') NOT LIKE ?",
        OWN_EVENTS,
    )
    return int(rows[0][0]) if rows else 0


def quiet_counts(agent: AgentRig) -> tuple[int, int]:
    """(lines heard, events stored) once the stored count stood still for :data:`QUIET`,
    the devices paused: every line heard by then is stored or refused."""
    last: list[tuple[int, float]] = []

    def still() -> bool:
        now = stored_items(agent)
        if not last or last[0][0] != now:
            last[:] = [(now, time.monotonic())]
        return time.monotonic() - last[0][1] >= QUIET

    wait_until(still, 30, "the agent to store or refuse every line heard")
    return heard_items(agent), last[0][0]
