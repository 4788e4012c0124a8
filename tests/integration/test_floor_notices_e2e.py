"""Floor notices end to end: the real collector tells a real agent's intercom, over Mosquitto.

The agent (a subprocess, as installed) reads two emulated devices on ptys: the
queue machine (opens and closes the branch) and the intercom (staff check in
and out of posts and acknowledge notices). The emulators run in this process,
on an asyncio loop of their own, so the test plays each line when the scenario
needs it and reads the ``NOTE`` lines the agent writes back. Every wait is on
a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest

from agent.emulators import Emulator
from branchwatch.broker import EmbeddedBroker
from collector.app import NOTICE_HOLD, NOTICE_TICK
from tests.integration.test_agent_fakes import BRANCH, REGION, AgentProcess, agent_toml
from tests.support import CollectorProcess, sample, wait_until

pytestmark = pytest.mark.integration

POST_EMPTY = 1.0  # notices.post_empty_seconds
ACK_TIMEOUT = 2.0  # notices.ack_timeout_seconds
# How late a notice may reach the intercom after its deadline (the bound).
DELIVERY = 2.0
COLLECTOR_TOML = f"""
[state]
snapshot_interval_seconds = 3600.0  # only the snapshot written when it stops
[notices]
post_empty_seconds = {POST_EMPTY}
ack_timeout_seconds = {ACK_TIMEOUT}
"""
BRANCH_PATH = f"/branches/{REGION}/{BRANCH}"
LABELS = {"region": REGION, "branch": BRANCH, "kind": "post_empty"}

T = TypeVar("T")


class Note(NamedTuple):
    id: str
    position: int
    text: str
    received: float  # when the test saw it (time.time())


class Devices:
    """The branch's queue machine and intercom: emulators on ptys, on a loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.queue = self._call(Emulator.pty("queue-line"))
        self.intercom = self._call(Emulator.pty("intercom-line"))
        self._notes: list[Note] = []

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def agent_devices(self) -> str:
        return "".join(
            f'[[devices]]\nid = "{name}"\nprotocol = "{emulator.protocol}"\n'
            f'url = "{emulator.endpoint}"\n'
            for name, emulator in (("queue-1", self.queue), ("intercom-1", self.intercom))
        )

    def play(self, emulator: Emulator, *lines: str) -> None:
        self._call(emulator.play(list(lines)))

    def notes(self) -> list[Note]:
        """The notices the agent wrote to the intercom so far, oldest first."""

        async def lines() -> list[bytes]:
            return self.intercom.lines()

        for line in self._call(lines())[len(self._notes) :]:
            verb, notice, position, text = line.decode().split(" ", 3)
            assert verb == "NOTE", line
            self._notes.append(Note(notice, int(position), text, time.time()))
        return list(self._notes)

    def close(self) -> None:
        self._call(self.queue.close())
        self._call(self.intercom.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Floor(NamedTuple):
    collector: CollectorProcess
    agent: AgentProcess
    devices: Devices


@pytest.fixture
def floor(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[Floor]:
    """An open branch whose posts 1 to 4 are staffed, reported by the agent's intercom."""
    state = tmp_path / "collector"
    state.mkdir()
    (tmp_path / "collector.toml").write_text(COLLECTOR_TOML)
    extra = ["--config", str(tmp_path / "collector.toml")]
    collector = CollectorProcess(mosquitto.url, state, "collector", extra=extra).start()
    devices = Devices()
    workdir = tmp_path / "agent"
    workdir.mkdir()
    config = agent_toml(mosquitto.url, str(workdir / "spool.db"), devices.agent_devices())
    agent = AgentProcess(workdir, config).start()
    try:
        wait_until(lambda: devices_up(collector) == {"queue-1", "intercom-1"}, 20,
                   f"both devices up in the collector; agent log:\n{agent.log()}")  # fmt: skip
        devices.play(devices.queue, "OPEN")
        # A fresh collector holds the agent's events until its replay answer is in (up to
        # 10 s when the agent has nothing to replay yet): hence the longer wait.
        wait_until(lambda: branch(collector)["open"], 30, "the branch open")
        devices.play(devices.intercom, "IN 1 s.li", "IN 2 s.zhao", "IN 3 s.wu", "IN 4 s.he")
        wait_until(lambda: staffed(collector) == {1, 2, 3, 4}, 10, "posts 1 to 4 staffed")
        wait_notices_on(collector)
        yield Floor(collector, agent, devices)
    finally:
        agent.kill()
        collector.kill()
        devices.close()


def branch(collector: CollectorProcess) -> dict[str, Any]:
    detail: dict[str, Any] = collector.api(BRANCH_PATH)["branch"]
    return detail


def devices_up(collector: CollectorProcess) -> set[str]:
    if collector.get("/api/v1" + BRANCH_PATH)[0] != 200:
        return set()  # the collector has not heard of the branch yet
    return {d["device"] for d in branch(collector)["devices"] if d["up"]}


def staffed(collector: CollectorProcess) -> set[int]:
    return {p["position"] for p in branch(collector)["positions"] if p["staffed"]}


def wait_notices_on(collector: CollectorProcess, runs: int = 1) -> None:
    """Until the collector's ``runs``-th run sends notices (each holds them a few seconds
    after connecting; the runs share one log)."""
    wait_until(
        lambda: collector.log_path.read_text().count("floor notices: sending") >= runs,
        NOTICE_HOLD + 10,
        "the collector to start sending notices",
    )


def notice_totals(collector: CollectorProcess) -> dict[str, float | None]:
    metrics = collector.metrics()
    return {
        outcome: sample(metrics, "branchwatch_notices_total", **LABELS, outcome=outcome)
        for outcome in ("sent", "acked", "escalated", "unanswered", "resolved")
    }


def chain(collector: CollectorProcess) -> list[tuple[int, int | None]]:
    """(post told, post that acknowledged) of the one open episode's notices."""
    [episode] = branch(collector)["notices"]
    assert (episode["kind"], episode["position"]) == ("post_empty", 1)
    return [(n["position"], n["acked_by"]) for n in episode["notices"]]


def test_post_1_empty_backfill_escalation_ack_and_resolution(floor: Floor) -> None:
    collector, devices = floor.collector, floor.devices
    vacated = time.time()
    devices.play(devices.intercom, "OUT 1")

    [first] = wait_until(devices.notes, POST_EMPTY + DELIVERY, "the notice to post 3")
    assert first.position == 3, first  # the first staffed post of the backfill order
    assert first.received - vacated <= POST_EMPTY + DELIVERY
    assert first.text.startswith("Post 1 (greeting and ticket desk) has been empty for")
    assert chain(collector) == [(3, None)]

    # Post 3 does not acknowledge: post 4, the next in the order, is told.
    _, second = wait_until(lambda: devices.notes()[1:] and devices.notes(),
                           ACK_TIMEOUT + DELIVERY, "the notice to post 4")  # fmt: skip
    assert second.position == 4, second
    assert second.received - first.received <= ACK_TIMEOUT + DELIVERY
    assert chain(collector) == [(3, None), (4, None)]

    # Post 4 acknowledges: the chain stops.
    devices.play(devices.intercom, f"ACK 4 {second.id}")
    wait_until(lambda: chain(collector) == [(3, None), (4, 4)], 15, "the ack in the API")
    assert branch(collector)["notices"][0]["stage"] == "acked"

    devices.play(devices.intercom, "IN 1 s.li")
    wait_until(lambda: branch(collector)["notices"] == [], 15, "the episode resolved")
    assert notice_totals(collector) == {
        "sent": 2, "acked": 1, "escalated": 1, "unanswered": 0, "resolved": 1,
    }  # fmt: skip
    metrics = collector.metrics()
    assert sample(metrics, "branchwatch_notice_open", **LABELS) == 0
    assert sample(metrics, "branchwatch_notice_ack_seconds_count", **LABELS) == 1
    assert sample(metrics, "branchwatch_notice_unanswered_timestamp_seconds", **LABELS) is None
    assert [n.position for n in devices.notes()] == [3, 4]  # nothing after the ack
    log = collector.log_path.read_text()
    assert f"notice {first.id} sent to post 3 of {REGION}/{BRANCH}" in log
    assert "s.wu" not in log  # staff ids stay out of the collector's log


def test_a_closed_branch_is_told_nothing(floor: Floor) -> None:
    collector, devices = floor.collector, floor.devices
    devices.play(devices.queue, "CLOSE")
    wait_until(lambda: not branch(collector)["open"], 5, "the branch closed")
    devices.play(devices.intercom, "OUT 1")
    wait_until(lambda: 1 not in staffed(collector), 5, "post 1 empty")
    [post_1] = [p for p in branch(collector)["positions"] if p["position"] == 1]
    # Past the moment a notice would have been taken and published, had the branch been open.
    deadline = post_1["since"] + POST_EMPTY + 2 * NOTICE_TICK + DELIVERY
    wait_until(lambda: time.time() > deadline, deadline - time.time() + 1, "the deadline")
    assert devices.notes() == []
    assert notice_totals(collector)["sent"] == 0

    # Opened again with post 1 still empty: now the branch is told.
    devices.play(devices.queue, "OPEN")
    [note] = wait_until(devices.notes, POST_EMPTY + DELIVERY + 5, "the notice after opening")
    assert note.position == 3


def test_a_collector_restart_mid_episode_sends_no_duplicate(floor: Floor) -> None:
    collector, devices = floor.collector, floor.devices
    devices.play(devices.intercom, "OUT 1")
    [first] = wait_until(devices.notes, POST_EMPTY + DELIVERY, "the notice to post 3")
    assert collector.stop() == 0  # writes its snapshot; the ack timeout runs out meanwhile
    collector.start()
    wait_notices_on(collector, runs=2)
    # The restored episode goes on where it stood: post 4 is next, post 3 is not told twice.
    _, second = wait_until(lambda: devices.notes()[1:] and devices.notes(), DELIVERY + 5,
                           "the notice to post 4 after the restart")  # fmt: skip
    assert (first.position, second.position) == (3, 4)
    assert chain(collector) == [(3, None), (4, None)]
    totals = notice_totals(collector)
    assert (totals["sent"], totals["escalated"]) == (2, 1)
    devices.play(devices.intercom, "IN 1 s.li")
    wait_until(lambda: notice_totals(collector)["resolved"] == 1, 15, "the episode resolved")
    assert [n.position for n in devices.notes()] == [3, 4]
