"""Hostile input: MQTT payloads at the collector, serial frames at each codec and at an agent.

MQTT: the seeded generator of tests/integration/test_collector_hostile.py
(10,000 messages a round, each with the reason it must be rejected for),
round after round, published through the rig's Mosquitto while the branches'
load goes on. Serial: :mod:`tests.faults.frames`, through a real pty into the
real device adapter of each codec (counts by reason must match the codec's
own verdict on the whole stream), and into a running agent's queue line.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from pathlib import Path
from typing import Final

from agent.devices.base import DeviceConfig
from agent.devices.registry import build_device
from agent.devices.testing import RecordingContext
from agent.emulators import Emulator
from tests.faults.frames import NOW, PAD_COUNTER, RESYNC_REASON, Stream, hostile_stream, oracle
from tests.faults.report import Outcome
from tests.faults.rig import AGENT, Rig
from tests.faults.scenarios import Size, finish
from tests.integration import scenario
from tests.integration.test_collector_hostile import hostile_messages
from tests.support import FakeAgent, Samples, mqtt_client, sample, wait_until

SEED: Final = 20261130
CODECS: Final = ("queue-line", "intercom-line", "evaluator-frame")
WRITE_CHUNK: Final = 64 * 1024
PUBLISH_WINDOW: Final = 1_000
BAD_FRAMES: Final = "branchwatch_agent_bad_frames_total"


def hostile_mqtt(rig: Rig, size: Size) -> Outcome:
    outcome = Outcome(f"{size.hostile:,} hostile MQTT payloads")
    known = FakeAgent(rig.broker.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    known.publish(scenario.events(1, 10))  # what the duplicates among them repeat
    wait_until(
        lambda: (
            rig.agent_view(scenario.BRANCH, scenario.REGION, scenario.AGENT).get("last_seq") == 10
        ),
        15,
        "the known agent's first events",
    )
    known.close()
    messages: list[tuple[str, bytes, str]] = []
    while len(messages) < size.hostile:
        messages += hostile_messages(random.Random(SEED + len(messages)))
    messages = messages[: size.hostile]
    expected = Counter(reason for _, _, reason in messages)
    before = rig.metrics()
    client = mqtt_client(rig.broker.port, "faults-hostile")
    try:
        for start in range(0, len(messages), PUBLISH_WINDOW):  # within paho's queue
            window = messages[start : start + PUBLISH_WINDOW]
            infos = [client.publish(topic, payload, qos=1) for topic, payload, _ in window]
            for info in infos:
                info.wait_for_publish(size.timeout)
    finally:
        client.disconnect()
        client.loop_stop()

    def counted() -> Counter[str] | None:
        got = _outcomes(before, rig.metrics(), expected)
        return got if got.total() >= size.hostile else None

    got = wait_until(counted, size.timeout, "every hostile message counted")
    outcome.figures["payloads"] = f"{size.hostile:,}"
    outcome.figures["counted by reason"] = ", ".join(
        f"{reason} {n:,}" for reason, n in sorted(got.items())
    )
    outcome.check("each counted under its reason", got == expected, f"{got - expected}")
    outcome.check("the collector is alive", rig.collector.alive and _healthy(rig))
    outcome.saw(rig.collector.log(), r"rejected \(", "collector log (one per reason a minute)")
    finish(rig, size, outcome)
    return outcome


def _outcomes(before: Samples, after: Samples, reasons: Counter[str]) -> Counter[str]:
    """What happened to the messages since ``before``: rejected by reason, or duplicate."""
    got: Counter[str] = Counter()
    for reason in reasons:
        if reason == "duplicate":
            name, labels = "branchwatch_collector_messages_total", {"result": "duplicate"}
        else:
            name, labels = "branchwatch_collector_rejected_total", {"reason": reason}
        delta = (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)
        if delta:
            got[reason] = int(delta)
    return got


def _healthy(rig: Rig) -> bool:
    return rig.http.get("/healthz")[0] == 200


# -- serial ---------------------------------------------------------------------------------


def hostile_serial(workdir: Path, size: Size) -> Outcome:
    """Every codec's real device adapter on a real pty; no agent process (see below)."""
    outcome = Outcome(f"{size.frames:,} hostile serial frames per codec")
    for index, protocol in enumerate(CODECS):
        stream = hostile_stream(protocol, size.frames, SEED + index)
        want_bad, want_events = oracle(stream)
        context = asyncio.run(_through_a_pty(stream, workdir / f"tty-{protocol}", size.timeout))
        got_bad = Counter(context.bad_reasons())
        got_events = len(context.received)
        exact = {r: n for r, n in want_bad.items() if r != RESYNC_REASON}
        got_exact = {r: n for r, n in got_bad.items() if r != RESYNC_REASON}
        outcome.figures[protocol] = (
            f"{stream.hostile:,} hostile frames, {stream.controls:,} control events; bad frames "
            + ", ".join(f"{r} {n:,}" for r, n in sorted(got_bad.items()))
        )
        outcome.check(f"{protocol}: every hostile frame refused once, by reason",
                      got_exact == exact and sum(exact.values()) == stream.hostile,
                      f"got {got_exact}, want {exact}")  # fmt: skip
        outcome.check(
            f"{protocol}: resync skips counted",
            got_bad[RESYNC_REASON] >= want_bad[RESYNC_REASON],
            f"{got_bad[RESYNC_REASON]} < {want_bad[RESYNC_REASON]}",
        )
        outcome.check(f"{protocol}: every control frame made its event",
                      got_events == want_events == stream.controls,
                      f"{got_events} events, {stream.controls} controls")  # fmt: skip
        outcome.check(f"{protocol}: the link never dropped", context.links == [True],
                      f"{context.links}")  # fmt: skip
    return outcome


async def _through_a_pty(stream: Stream, link: Path, timeout: float) -> RecordingContext:
    emulator = await Emulator.pty(stream.protocol, link)
    context = RecordingContext("hostile", lambda: NOW)
    options = {"counter": PAD_COUNTER, "window": 3600} if stream.protocol == "evaluator-frame" \
        else {}  # fmt: skip
    config = DeviceConfig(id="hostile", protocol=stream.protocol, url=str(link), options=options)
    device = build_device(config, context)
    task = asyncio.create_task(device.run())
    try:
        await context.wait_for(lambda: context.links == [True], 10)
        for start in range(0, len(stream.data), WRITE_CHUNK):
            await emulator.send(stream.data[start : start + WRITE_CHUNK])
        await context.wait_for(lambda: len(context.received) >= stream.controls, timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await emulator.close()
    return context


def hostile_serial_agent(rig: Rig, size: Size) -> Outcome:
    """Hostile lines on a running agent's queue line, between the load's own lines."""
    outcome = Outcome("hostile serial frames on a running agent's queue line")
    count = max(100, size.frames // 10)
    stream = hostile_stream("queue-line", count, SEED)
    want_bad, _ = oracle(stream)
    branch = rig.agents[0].branch
    queue = branch.devices["queue"]
    labels = {"region": branch.region, "branch": branch.branch, "agent": AGENT, "device": "queue"}
    before = rig.metrics()
    # The stream's controls are tickets too: the queue machine sends them as its own lines.
    controls = [
        {"type": "ticket.issued", "ticket": f"H{i:07d}", "service": "cash"}
        for i in range(stream.hostile)
        if i % 10 == 9 or i == stream.hostile - 1
    ]

    async def send() -> None:
        async with queue.lock:
            emulator = queue.emulator
            assert emulator is not None
            await emulator.send(stream.data)
            queue.sent.extend(controls)

    rig.load.call(send())
    outcome.figures["frames"] = f"{count:,} hostile, {len(controls):,} control tickets"
    finish(rig, size, outcome)
    outcome.check("the agent is still running", rig.agents[0].proc.alive)
    if not any(name == BAD_FRAMES for name, _ in rig.metrics()):
        outcome.gaps.append("bad device frames are counted only inside the agent")
        return outcome
    want = dict(want_bad)

    def shown() -> dict[str, int]:
        after = rig.metrics()
        return {
            reason: int((sample(after, BAD_FRAMES, **labels, reason=reason) or 0)
                        - (sample(before, BAD_FRAMES, **labels, reason=reason) or 0))
            for reason in want
        }  # fmt: skip

    with contextlib.suppress(AssertionError):  # the status comes every few seconds
        wait_until(lambda: shown() == want, size.timeout, "bad frames in the agent's status")
    got = shown()
    outcome.check("the collector shows them by reason", got == want, f"{got}, want {want}")
    outcome.seen.append(f'metric: {BAD_FRAMES}{{device="queue",reason=...}}: {got}')
    return outcome
