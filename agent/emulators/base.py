"""The device side of a serial line (a pty) or a TCP port, for tests, demos and installers.

A pty is the fake transport that ships with the adapters: the agent opens the
slave path exactly as it opens ``/dev/ttyUSB0``. :meth:`Emulator.pty` can
keep a stable symlink to the slave (like udev's ``/dev/serial/by-id``), so a
test can "unplug" the device (:meth:`Emulator.close`) and plug a new one in
at the same path, and watch the agent reconnect.

:meth:`Emulator.play` sends to whoever is there now. :meth:`Emulator.serve`
plays a script to every peer from its start instead: each TCP client gets
its own playback, and on a pty each time something opens the port (and only
then), so a doctor run that connects first does not use the script up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import tty
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Final, NamedTuple, Self

from agent.emulators.script import Item, encode_item

# How often a pty nobody has open is checked for an opener: the kernel signals the
# hang-up of the last close on the master, but not the next open.
PTY_OPEN_POLL: Final = 0.02

Send = Callable[[bytes], Awaitable[None]]


class Playback(NamedTuple):
    """What :meth:`Emulator.serve` plays to each peer."""

    script: Sequence[Item]
    delay: float  # seconds after the peer arrived: a serial port flushes its input when opened
    repeat: int | None  # times through the script; None: until the peer leaves


class Emulator:
    """One emulated device speaking ``protocol``; use :meth:`pty` or :meth:`tcp` to make one."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.endpoint = ""  # what to put in the agent's device url
        self.received = bytearray()
        self.peers_seen = 0  # TCP clients accepted, or times the pty was opened
        self._changed = asyncio.Condition()
        self._master = -1
        self._link: Path | None = None
        self._pty_open = False
        self._pty_watch: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []
        self._playback: Playback | None = None
        self._playing: dict[object, asyncio.Task[None]] = {}  # peer -> its playback

    # -- construction -----------------------------------------------------------------------

    @classmethod
    async def pty(cls, protocol: str, link: str | Path | None = None) -> Self:
        self = cls(protocol)
        self._master, slave = os.openpty()
        # Raw mode before the agent opens it: no echo back to us, no CR/LF translation.
        # The setting stays with the pty; our slave end is closed so that an opener shows.
        tty.setraw(slave)
        path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(self._master, False)
        if link is not None:
            self._link = Path(link)
            tmp = self._link.with_name(self._link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(path)
            tmp.replace(self._link)  # atomic: the agent never sees a missing link mid-swap
            path = str(self._link)
        self.endpoint = path
        self._pty_watch = asyncio.get_running_loop().create_task(self._watch_pty())
        return self

    @classmethod
    async def tcp(cls, protocol: str, host: str = "127.0.0.1", port: int = 0) -> Self:
        self = cls(protocol)
        self._server = await asyncio.start_server(self._tcp_client, host, port)
        bound = self._server.sockets[0].getsockname()
        self.endpoint = f"tcp://{bound[0]}:{bound[1]}"
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- bytes in and out -------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """To every peer there now (written to a pty even when nobody has it open)."""
        if self._master >= 0:
            await self._write_pty(data)
        for writer in list(self._clients):
            await _write_tcp(writer, data)

    async def play(self, script: Iterable[Item]) -> None:
        """Send each item (line, frame command, raw bytes); a number pauses that long."""
        await self._play(script, self.send)

    def serve(self, script: Sequence[Item], delay: float = 1.0, repeat: int | None = 1) -> None:
        """From now on, play ``script`` to every peer from its start, ``repeat`` times
        (None: until the peer leaves), ``delay`` seconds after it arrived."""
        if repeat is not None and repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        self._playback = Playback(tuple(script), delay, repeat)
        if self._pty_open:
            self._start_playback("pty", self._write_pty)
        for writer in self._clients:
            self._start_playback(writer, _tcp_sender(writer))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds after something changed; TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    @property
    def connected(self) -> bool:
        """A peer is there now: a TCP client, or something has the pty open."""
        return bool(self._clients) or self._pty_open

    async def wait_client(self, timeout: float = 5.0) -> None:
        """Until a peer is there (:attr:`connected`)."""
        await self.wait_for(lambda: self.connected, timeout)

    def lines(self) -> list[bytes]:
        """Complete lines received so far (what the agent wrote)."""
        return bytes(self.received).splitlines(keepends=False)[: self.received.count(b"\n")]

    # -- teardown ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Unplug: the agent's next read fails (pty) or sees EOF (TCP)."""
        for task in self._playing.values():
            task.cancel()
        self._playing.clear()
        if self._pty_watch is not None:
            self._pty_watch.cancel()
            self._pty_watch = None
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = -1
            self._pty_open = False
        if self._server is not None:
            self._server.close()
            for writer in self._clients:
                writer.close()
            self._clients.clear()
            self._server = None

    # -- internals --------------------------------------------------------------------------

    async def _play(self, script: Iterable[Item], send: Send) -> None:
        for item in script:
            if isinstance(item, int | float):
                await asyncio.sleep(item)
            else:
                await send(encode_item(self.protocol, item))

    def _start_playback(self, peer: object, send: Send) -> None:
        playback = self._playback
        if playback is None:
            return

        async def run() -> None:
            await asyncio.sleep(playback.delay)
            rounds = 0
            while playback.script and (playback.repeat is None or rounds < playback.repeat):
                await self._play(playback.script, send)
                rounds += 1
                await asyncio.sleep(0)  # a script without pauses must not starve the loop

        self._stop_playback(peer)
        self._playing[peer] = asyncio.get_running_loop().create_task(run())

    def _stop_playback(self, peer: object) -> None:
        task = self._playing.pop(peer, None)
        if task is not None:
            task.cancel()

    async def _write_pty(self, data: bytes) -> None:
        # Non-blocking, waiting for room: the agent under test usually runs in this same
        # event loop, so a blocking write into a full pty would deadlock the test.
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                ready: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self._master, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(self._master)

    async def _watch_pty(self) -> None:
        """Follow whether something has the port open; read from it only while it does."""
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        closed = asyncio.Event()
        while True:
            while any(flags & select.POLLHUP for _, flags in poller.poll(0)):
                await asyncio.sleep(PTY_OPEN_POLL)  # nobody has the port open
            closed.clear()
            self._pty_open = True
            self.peers_seen += 1
            asyncio.get_running_loop().add_reader(self._master, self._read_master, closed)
            self._start_playback("pty", self._write_pty)
            await self._notify_waiters()
            await closed.wait()  # set by the reader when the last opener closed the port
            self._stop_playback("pty")
            await self._notify_waiters()

    def _read_master(self, closed: asyncio.Event) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:  # EIO: the last opener closed the port
            data = b""
        if data:
            self._received(data)
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self._pty_open = False
        closed.set()

    def _received(self, data: bytes) -> None:
        self.received += data
        asyncio.get_running_loop().create_task(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.append(writer)
        self.peers_seen += 1
        self._start_playback(writer, _tcp_sender(writer))
        await self._notify_waiters()
        try:
            while data := await reader.read(4096):
                self._received(data)
        except OSError:
            pass
        finally:
            self._stop_playback(writer)
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()
            await self._notify_waiters()


async def _write_tcp(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    with contextlib.suppress(OSError):
        await writer.drain()


def _tcp_sender(writer: asyncio.StreamWriter) -> Send:
    return lambda data: _write_tcp(writer, data)
