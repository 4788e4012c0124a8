"""The device side of a serial line (a pty) or a TCP port, for tests, demos and installers.

A pty is the fake transport of DESIGN §10: the agent opens the slave path
exactly as it opens ``/dev/ttyUSB0``. :meth:`Emulator.pty` can keep a stable
symlink to the slave (like udev's ``/dev/serial/by-id``), so a test can
"unplug" the device (:meth:`Emulator.close`) and plug a new one in at the
same path, and watch the agent reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

from agent.emulators.script import Item, encode_item


class Emulator:
    """One emulated device speaking ``protocol``; use :meth:`pty` or :meth:`tcp` to make one."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.endpoint = ""  # what to put in the agent's device url
        self.received = bytearray()
        self._changed = asyncio.Condition()
        self._master = -1
        self._slave = -1
        self._link: Path | None = None
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.StreamWriter] = []

    # -- construction -----------------------------------------------------------------------

    @classmethod
    async def pty(cls, protocol: str, link: str | Path | None = None) -> Self:
        self = cls(protocol)
        self._master, self._slave = os.openpty()
        # Raw mode before the agent opens it: no echo back to us, no CR/LF translation.
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        path = os.ttyname(self._slave)
        if link is not None:
            self._link = Path(link)
            tmp = self._link.with_name(self._link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(path)
            tmp.replace(self._link)  # atomic: the agent never sees a missing link mid-swap
            path = str(self._link)
        self.endpoint = path
        asyncio.get_running_loop().add_reader(self._master, self._read_master)
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
        if self._master >= 0:
            await self._write_pty(data)
        for writer in list(self._clients):
            writer.write(data)
            with contextlib.suppress(OSError):
                await writer.drain()

    async def play(self, script: Iterable[Item]) -> None:
        """Send each item (line, frame command, raw bytes); a number pauses that long."""
        for item in script:
            if isinstance(item, int | float):
                await asyncio.sleep(item)
            else:
                await self.send(encode_item(self.protocol, item))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds after something was received; TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_client(self, timeout: float = 5.0) -> None:
        """TCP only: until the agent is connected."""
        await self.wait_for(lambda: bool(self._clients), timeout)

    def lines(self) -> list[bytes]:
        """Complete lines received so far (what the agent wrote)."""
        return bytes(self.received).splitlines(keepends=False)[: self.received.count(b"\n")]

    # -- teardown ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Unplug: the agent's next read fails (pty) or sees EOF (TCP)."""
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1
        if self._server is not None:
            self._server.close()
            for writer in self._clients:
                writer.close()
            self._clients.clear()
            self._server = None

    # -- internals --------------------------------------------------------------------------

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

    def _read_master(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            data = b""
        if data:
            self._received(data)

    def _received(self, data: bytes) -> None:
        self.received += data
        asyncio.get_running_loop().create_task(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.append(writer)
        await self._notify_waiters()
        try:
            while data := await reader.read(4096):
                self._received(data)
        except OSError:
            pass
        finally:
            if writer in self._clients:
                self._clients.remove(writer)
            writer.close()
