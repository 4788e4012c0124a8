"""The agent delivers a notice id once: both collectors of an HA pair send each notice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core import AgentCore
from agent.devices.base import DeviceConfig, DeviceContext
from agent.notices import DeliveredNotices
from agent.spool import Spool
from branchwatch.contract import Notify


class Intercom:
    """Takes notices for its post; ``gate`` holds a write open, ``fail`` makes writes fail."""

    kind = "fake"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        self.position = int(config.options["position"])
        self.shown: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail = 0  # how many of the next writes fail

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def notify(self, command: Notify) -> bool:
        if command.position != self.position:
            return False
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise OSError("serial write failed")
        self.shown.append(command.id)
        return True


@pytest.fixture
def core(tmp_path: Path) -> Iterator[AgentCore]:
    with Spool(tmp_path / "spool.db") as spool:
        config = DeviceConfig(id="intercom-1", protocol="fake", options={"position": 3})
        agent = AgentCore((config,), spool, {"fake": Intercom}, clock=lambda: 1764053400.0)
        agent.build_devices()
        yield agent


def intercom(core: AgentCore) -> Intercom:
    device = core.devices["intercom-1"]
    assert isinstance(device, Intercom)
    return device


def notice(notice_id: str = "e1-1764053340000-3") -> Notify:
    return Notify(v=1, id=notice_id, position=3, text="Post 1 has been empty for 1 min")


def test_a_repeat_is_answered_without_offering_it_again(
    core: AgentCore, caplog: pytest.LogCaptureFixture
) -> None:
    async def both() -> list[int]:
        first = await core.notify(notice())
        with caplog.at_level(logging.DEBUG, logger="agent.core"):
            second = await core.notify(notice())
        other = await core.notify(notice("e1-1764053340000-3.1"))
        return [first, second, other]

    assert asyncio.run(both()) == [1, 0, 1]
    assert intercom(core).shown == ["e1-1764053340000-3", "e1-1764053340000-3.1"]
    assert core.notices.repeats == 1
    assert "notice e1-1764053340000-3 for post 3: delivered already" in caplog.text


def test_two_copies_at_once_reach_the_intercom_once(core: AgentCore) -> None:
    async def together() -> list[int]:
        device = intercom(core)
        device.gate = asyncio.Event()
        copies = [asyncio.create_task(core.notify(notice())) for _ in range(2)]
        await asyncio.sleep(0)  # both copies are in: the first writing, the second waiting
        assert not any(copy.done() for copy in copies)
        device.gate.set()
        return list(await asyncio.gather(*copies))

    assert asyncio.run(together()) == [1, 0]
    assert intercom(core).shown == ["e1-1764053340000-3"]


def test_a_copy_nobody_took_leaves_the_next_copy_its_own_try(core: AgentCore) -> None:
    async def twice() -> list[int]:
        device = intercom(core)
        device.fail = 1
        device.gate = asyncio.Event()
        copies = [asyncio.create_task(core.notify(notice())) for _ in range(2)]
        await asyncio.sleep(0)
        device.gate.set()
        return list(await asyncio.gather(*copies))

    assert asyncio.run(twice()) == [0, 1]  # the first write failed, the second copy went
    assert intercom(core).shown == ["e1-1764053340000-3"]
    assert core.notices.repeats == 0


def test_a_waiting_copy_cancelled_leaves_the_first_delivery_alone(core: AgentCore) -> None:
    async def cancel_the_second() -> int:
        device = intercom(core)
        device.gate = asyncio.Event()
        first = asyncio.create_task(core.notify(notice()))
        second = asyncio.create_task(core.notify(notice()))
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.sleep(0)
        device.gate.set()
        return await first

    assert asyncio.run(cancel_the_second()) == 1
    assert intercom(core).shown == ["e1-1764053340000-3"]


def test_the_memory_is_bounded_by_count_and_age() -> None:
    now = [0.0]
    delivered = DeliveredNotices(keep_ids=2, keep_seconds=60.0, clock=lambda: now[0])

    async def deliver(notice_id: str) -> bool:
        claim = await delivered.claim(notice_id)
        if claim is None:
            return False
        delivered.done(claim, 1)
        return True

    async def run() -> list[bool]:
        got = [await deliver(n) for n in ("a", "b", "a", "c")]  # "a" repeated, then "c"
        got.append(await deliver("a"))  # forgotten: the newest two are b and c
        now[0] = 61.0
        got.append(await deliver("c"))  # older than keep_seconds: forgotten too
        got.append(await deliver("c"))
        return got

    assert asyncio.run(run()) == [True, True, False, True, True, True, False]
    assert len(delivered) == 1
    assert delivered.repeats == 2
