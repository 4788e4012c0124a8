"""A branch's devices, emulated on ptys by this process, at a steady load, every line tallied.

Each branch has a queue machine (``queue-line``: tickets issued, called, served),
an evaluator pad (``evaluator-frame``: a request, then a rating) and an intercom
(``intercom-line``: staff checking in and out of posts 1, 5 and 6). Every item a
device sends is recorded with the contract events it means, so the truth of what
the floor should show can be computed from what the devices produced. An item
sent while nobody has the port open (the agent is dead, the cable is out) is
recorded as *unheard*: it is lost on the wire, which no software can prevent.

The emulators run in an asyncio loop on a thread of their own; :class:`Load`
is the rig's handle on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from agent.emulators import Emulator
from agent.emulators.script import encode_item

T = TypeVar("T")
Meaning = dict[str, Any]  # a contract event's type and own fields (no v, seq, ts, device)

SERVICES: Final = ("cash", "non_cash")
COUNTERS: Final = ("c1", "c2")
# (position, staff who may check in there): post 5 holds several tellers at once.
POSTS: Final = ((1, ("s1", "s2")), (5, ("t1", "t2", "t3")), (6, ("v1",)))
RATING_KEYS: Final = ("very_satisfied", "satisfied", "neutral", "unsatisfied")
DEVICES: Final = {"queue": "queue-line", "pads": "evaluator-frame", "intercom": "intercom-line"}
PAD_COUNTER: Final = "c1"


@dataclass
class Rates:
    """Items per second of each device of a branch (a busy branch is ~0.1 tickets/s)."""

    tickets: float = 2.0  # each ticket is 4 queue lines: issue, call, start, end
    evaluations: float = 1.0  # a request and its rating
    staff_moves: float = 1.0  # one check-in or check-out


@dataclass
class DeviceLoad:
    """One emulated device: its pty, and every item it sent (heard or not)."""

    name: str
    link: Path
    emulator: Emulator | None = None
    sent: list[Meaning] = field(default_factory=list)
    unheard: list[Meaning] = field(default_factory=list)
    # One writer at a time: the emulator waits for room on the pty with the loop's single
    # writer callback per file descriptor, which a second waiting writer would replace.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def protocol(self) -> str:
        return DEVICES[self.name]

    async def send(self, item: str | bytes, meaning: list[Meaning]) -> None:
        async with self.lock:
            emulator = self.emulator
            if emulator is None or not emulator.connected:
                self.unheard.extend(meaning)
            else:
                await emulator.send(encode_item(self.protocol, item))
            self.sent.extend(meaning)


class BranchLoad:
    """The three devices of one branch and the items they send."""

    def __init__(self, region: str, branch: str, workdir: Path, seed: int) -> None:
        self.region, self.branch = region, branch
        self.devices = {name: DeviceLoad(name, workdir / f"tty-{name}") for name in DEVICES}
        self._rng = random.Random(seed)
        self._tickets = itertools.count(1)
        self._ratings = itertools.cycle(range(1, 5))
        self._staffed: dict[int, set[str]] = {position: set() for position, _ in POSTS}

    async def plug(self, name: str) -> None:
        device = self.devices[name]
        device.emulator = await Emulator.pty(device.protocol, device.link)

    async def unplug(self, name: str) -> None:
        device = self.devices[name]
        emulator, device.emulator = device.emulator, None
        if emulator is not None:
            await emulator.close()

    def connected(self) -> bool:
        return all(d.emulator is not None and d.emulator.connected for d in self.devices.values())

    async def open_day(self) -> None:
        queue = self.devices["queue"]
        await queue.send("OPEN", [{"type": "branch.opened"}])
        for counter, kind, teller in zip(COUNTERS, ("high", "low"), ("t1", "t2"), strict=True):
            await queue.send(
                f"CTR OPEN {counter} {kind} {teller}",
                [{"type": "counter.opened", "counter": counter}],
            )

    # -- what each device says ----------------------------------------------------------

    def ticket_lines(self) -> Iterator[tuple[str, Meaning]]:
        """The four lines of the next ticket's visit."""
        number = next(self._tickets)
        ticket = f"Q{number:06d}"
        service, counter = SERVICES[number % 2], COUNTERS[number % 2]
        yield f"ISSUE {ticket} {service}", {"type": "ticket.issued", "ticket": ticket,
                                              "service": service}  # fmt: skip
        yield f"CALL {ticket} {counter}", {"type": "ticket.called", "ticket": ticket}
        yield f"START {ticket} {counter} t1", {"type": "service.started", "ticket": ticket}
        yield f"END {ticket} {counter}", {"type": "service.ended", "ticket": ticket}

    def issue_line(self) -> tuple[str, Meaning]:
        return next(self.ticket_lines())

    def staff_move(self) -> tuple[str, Meaning]:
        position, staff = self._rng.choice(POSTS)
        who = self._rng.choice(staff)
        here = self._staffed[position]
        if who in here:
            here.discard(who)
            return f"OUT {position} {who}", {"type": "position.vacated", "position": position,
                                              "staff": who}  # fmt: skip
        here.add(who)
        return f"IN {position} {who}", {"type": "position.staffed", "position": position,
                                         "staff": who}  # fmt: skip

    # -- steady load ----------------------------------------------------------------------

    async def run(self, rates: Rates, gate: Gate) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._queue(rates.tickets, gate))
            group.create_task(self._pads(rates.evaluations, gate))
            group.create_task(self._intercom(rates.staff_moves, gate))

    async def _queue(self, rate: float, gate: Gate) -> None:
        queue = self.devices["queue"]
        while True:
            for line, meaning in self.ticket_lines():
                async with gate.item():
                    await queue.send(line, [meaning])
                await asyncio.sleep(1 / (4 * rate))

    async def _pads(self, rate: float, gate: Gate) -> None:
        pads = self.devices["pads"]
        for number in itertools.count(1):
            async with gate.item():  # a request and its rating: one item
                requested = {"type": "evaluation.requested", "counter": PAD_COUNTER}
                await pads.send(f"request 1 P{number:06d}", [requested])
                await asyncio.sleep(min(0.2, 0.5 / rate))
                key = next(self._ratings)
                rated = {"type": "evaluation.submitted", "counter": PAD_COUNTER,
                         "rating": RATING_KEYS[key - 1]}  # fmt: skip
                await pads.send(f"rate 1 {key}", [rated])
            await asyncio.sleep(max(0.0, 1 / rate - 0.2))

    async def _intercom(self, rate: float, gate: Gate) -> None:
        intercom = self.devices["intercom"]
        while True:
            async with gate.item():
                line, meaning = self.staff_move()
                await intercom.send(line, [meaning])
            await asyncio.sleep(1 / rate)

    async def burst(self, count: int) -> None:
        """``count`` tickets issued back to back, as fast as the line takes them."""
        queue = self.devices["queue"]
        for _ in range(count):
            line, meaning = self.issue_line()
            await queue.send(line, [meaning])


class Gate:
    """Lets the devices send while open; closing it waits until none is mid-item."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0

    @contextlib.asynccontextmanager
    async def item(self) -> AsyncIterator[None]:
        await self._open.wait()
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def close(self) -> None:
        self._open.clear()
        await self._idle.wait()

    def open(self) -> None:
        self._open.set()


class Load:
    """The emulated devices of every branch, on an event loop thread of their own."""

    def __init__(self, branches: list[BranchLoad], rates: Rates) -> None:
        self.branches = branches
        self.rates = rates
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="load", daemon=True)
        self._gate: Gate | None = None

    def start(self) -> None:
        """Plug every device in (the agents may open them from now on)."""
        self._thread.start()
        for branch in self.branches:
            for name in DEVICES:
                self.call(branch.plug(name))

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def connected(self) -> bool:
        return all(branch.connected() for branch in self.branches)

    def run(self) -> None:
        """Open each branch's day, then the steady load until :meth:`pause`."""
        self._gate = gate = Gate()

        async def steady() -> None:
            for branch in self.branches:
                await branch.open_day()
            async with asyncio.TaskGroup() as group:
                for branch in self.branches:
                    group.create_task(branch.run(self.rates, gate))

        asyncio.run_coroutine_threadsafe(steady(), self.loop)

    def pause(self) -> None:
        """Until :meth:`resume`: returns once no device is mid-item (a request and its rating
        are one)."""
        if self._gate is not None:
            self.call(self._gate.close())

    def resume(self) -> None:
        if self._gate is not None:
            self.loop.call_soon_threadsafe(self._gate.open)

    def close(self) -> None:
        async def stop() -> None:
            running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for branch in self.branches:
                for name in DEVICES:
                    await branch.unplug(name)

        if self._thread.is_alive():
            self.call(stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
