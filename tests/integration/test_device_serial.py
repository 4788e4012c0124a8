"""Serial kinds end to end: emulator on a pty (or TCP, or loop://) → Device.run() → events.

No hardware and no bare sleeps: every wait is on a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from agent.devices.base import Device, DeviceConfig
from agent.devices.registry import build_device
from agent.devices.testing import Recorded, RecordingContext
from agent.emulators import Emulator
from branchwatch.contract import Notify

FAST = {"reconnect_min": 0.02, "reconnect_max": 0.1}
NOW = 1_764_053_400.0  # the agent's clock, where a test fixes it


def run(coro: Coroutine[Any, Any, None], timeout: float = 10.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await coro

    asyncio.run(bounded())


async def with_device(
    protocol: str,
    url: str,
    options: dict[str, Any],
    body: Callable[[Device, RecordingContext], Awaitable[None]],
    clock: Callable[[], float] = time.time,
) -> RecordingContext:
    context = RecordingContext("dev-1", clock)
    config = DeviceConfig(id="dev-1", protocol=protocol, url=url, options={**FAST, **options})
    device = build_device(config, context)
    task = asyncio.create_task(device.run())
    try:
        await body(device, context)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return context


def test_queue_line_over_a_pty_then_unplug_and_replug(tmp_path: Path) -> None:
    link = tmp_path / "ttyQUEUE"

    async def main() -> None:
        emulator = await Emulator.pty("queue-line", link)

        async def body(_: Device, ctx: RecordingContext) -> None:
            await ctx.wait_for(lambda: ctx.links == [True])
            await emulator.play([
                "@1764054000 OPEN", "CTR OPEN c1 high t7", "ISSUE A001 cash", b"\x00\xffnoise\r\n",
                "CALL A001 c1", "START A001 c1 t7", b"ISSUE A0", b"02 vip V\r\n", "PRN PAPER_OUT",
                "BOGUS", "END A001 c1",
            ])  # fmt: skip
            await ctx.wait_for(lambda: ctx.types()[-1:] == ["service.ended"])
            await emulator.close()  # unplugged
            await ctx.wait_for(lambda: ctx.links == [True, False])
            async with await Emulator.pty("queue-line", link) as replugged:
                await ctx.wait_for(lambda: ctx.links == [True, False, True])
                await replugged.play(["PRN OK", "CLOSE"])
                await ctx.wait_for(lambda: ctx.types()[-1:] == ["branch.closed"])

        ctx = await with_device("queue-line", str(link), {}, body, clock=lambda: NOW)
        assert ctx.events == [
            Recorded("branch.opened", 1764054000.0, {}),
            Recorded("counter.opened", NOW, {"counter": "c1", "kind": "high", "teller": "t7"}),
            Recorded("ticket.issued", NOW, {"ticket": "A001", "service": "cash", "vip": False}),
            Recorded("ticket.called", NOW, {"ticket": "A001", "counter": "c1"}),
            Recorded("service.started", NOW, {"ticket": "A001", "counter": "c1", "teller": "t7"}),
            Recorded("ticket.issued", NOW, {"ticket": "A002", "service": "vip", "vip": True}),
            Recorded("device.fault", NOW, {"fault": "paper_out"}),
            Recorded("service.ended", NOW, {"ticket": "A001", "counter": "c1"}),
            # the printer's fault state is kept over the replug
            Recorded("device.recovered", NOW, {"fault": "paper_out"}),
            Recorded("branch.closed", NOW, {}),
        ]
        assert ctx.bad_reasons() == ["not_ascii", "unknown_verb"]

    run(main())


def test_evaluator_over_a_pty_window_and_bad_frames() -> None:
    async def main() -> None:
        emulator = await Emulator.pty("evaluator-frame")

        async def body(_: Device, ctx: RecordingContext) -> None:
            await ctx.wait_for(lambda: ctx.links == [True])
            corrupt = b"\x02\x03\x01\x10\x41\x00"  # bad CRC; the rest is then skipped as garbage
            await emulator.play(["request 1 A017 t.wang", "rate 1 1", "rate 1 4", corrupt])
            await ctx.wait_for(lambda: len(ctx.bad) >= 3)
            await emulator.play(["request 1 A018"])  # nobody rates: expires after the 0.2 s window
            await ctx.wait_for(lambda: ctx.types()[-1:] == ["evaluation.expired"], timeout=3)

        async with emulator:
            options = {"counter": "c3", "window": 0.2}
            ctx = await with_device("evaluator-frame", emulator.endpoint, options, body)
        assert [(e.type, e.fields) for e in ctx.events] == [
            ("evaluation.requested", {"counter": "c3", "ticket": "A017", "teller": "t.wang"}),
            ("evaluation.submitted",
             {"counter": "c3", "ticket": "A017", "teller": "t.wang", "rating": "very_satisfied"}),
            ("evaluation.requested", {"counter": "c3", "ticket": "A018"}),
            ("evaluation.expired", {"counter": "c3", "ticket": "A018"}),
        ]  # fmt: skip
        requested, expired = ctx.events[2].ts, ctx.events[3].ts
        assert abs(expired - requested - 0.2) < 1e-6  # stamped at the deadline, not when noticed
        assert ctx.bad_reasons() == ["duplicate_rating", "bad_checksum", "garbage"]

    run(main())


def test_intercom_over_a_pty_events_and_notices(tmp_path: Path) -> None:
    link = tmp_path / "ttyINTERCOM"
    notice = Notify(v=1, id="n-42", position=3, text="Post 1 empty\r\nIN 9 x")

    async def main() -> None:
        emulator = await Emulator.pty("intercom-line", link)

        async def body(device: Device, ctx: RecordingContext) -> None:
            await ctx.wait_for(lambda: ctx.links == [True])
            await emulator.play(["IN 1 s.li", "CALL 1 7 vip", "OUT 1"])
            await ctx.wait_for(lambda: len(ctx.events) == 3)
            assert await device.notify(notice)
            await emulator.wait_for(lambda: len(emulator.lines()) == 1)
            await emulator.play(["ACK 3 n-42"])
            await ctx.wait_for(lambda: len(ctx.events) == 4)
            await emulator.close()
            await ctx.wait_for(lambda: ctx.links == [True, False])
            assert not await device.notify(notice)  # link down: not delivered

        ctx = await with_device("intercom-line", str(link), {}, body)
        assert emulator.lines() == [b"NOTE n-42 3 Post 1 empty IN 9 x"]  # no injected line
        assert [(e.type, e.fields) for e in ctx.events] == [
            ("position.staffed", {"position": 1, "staff": "s.li"}),
            ("intercom.call", {"from_position": 1, "to_position": 7, "reason": "vip"}),
            ("position.vacated", {"position": 1}),
            ("intercom.ack", {"position": 3, "notice": "n-42"}),
        ]

    run(main())


def test_tcp_device_reconnects_when_the_peer_comes_back() -> None:
    async def main() -> None:
        first = await Emulator.tcp("queue-line")
        port = int(first.endpoint.rsplit(":", 1)[1])

        async def body(_: Device, ctx: RecordingContext) -> None:
            await first.wait_client()
            await ctx.wait_for(lambda: ctx.links == [True])
            await first.play(["OPEN"])
            await ctx.wait_for(lambda: len(ctx.events) == 1)
            await first.close()
            await ctx.wait_for(lambda: ctx.links == [True, False])
            async with await Emulator.tcp("queue-line", port=port) as second:
                await second.wait_client()
                await ctx.wait_for(lambda: ctx.links == [True, False, True])
                await second.play(["CLOSE"])
                await ctx.wait_for(lambda: len(ctx.events) == 2)

        ctx = await with_device("queue-line", first.endpoint, {}, body)
        assert ctx.types() == ["branch.opened", "branch.closed"]

    run(main())


def test_a_flood_of_garbage_costs_counts_not_the_link() -> None:
    flood = bytes(range(256)).replace(b"\n", b"") * 1000  # 255 kB without a newline

    async def main() -> None:
        async with await Emulator.pty("queue-line") as emulator:

            async def body(_: Device, ctx: RecordingContext) -> None:
                await ctx.wait_for(lambda: ctx.links == [True])
                await emulator.play([flood, b"\r\n", "OPEN"])
                await ctx.wait_for(lambda: len(ctx.events) == 1)

            ctx = await with_device("queue-line", emulator.endpoint, {}, body)
        assert ctx.types() == ["branch.opened"]
        assert ctx.bad_reasons() == ["line_too_long"]
        assert ctx.links == [True]

    run(main())


def test_loop_url_uses_the_polled_transport() -> None:
    async def body(device: Device, ctx: RecordingContext) -> None:
        await ctx.wait_for(lambda: ctx.links == [True])
        # loop:// echoes what we write: our own notice comes back as a line we do not speak.
        assert await device.notify(Notify(v=1, id="n-1", position=2, text="hello"))
        await ctx.wait_for(lambda: len(ctx.bad) == 1)

    ctx_box: list[RecordingContext] = []

    async def main() -> None:
        ctx_box.append(await with_device("intercom-line", "loop://", {}, body))

    run(main())
    assert ctx_box[0].bad_reasons() == ["unknown_verb"]


def test_missing_device_is_reported_down_once_and_retried(tmp_path: Path) -> None:
    link = tmp_path / "ttyLATER"

    async def body(_: Device, ctx: RecordingContext) -> None:
        await ctx.wait_for(lambda: ctx.links == [False])
        async with await Emulator.pty("queue-line", link) as emulator:  # plugged in late
            await ctx.wait_for(lambda: ctx.links == [False, True])
            await emulator.play(["OPEN"])
            await ctx.wait_for(lambda: len(ctx.events) == 1)

    async def main() -> None:
        await with_device("queue-line", str(link), {}, body)

    run(main())
