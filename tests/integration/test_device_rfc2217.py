"""``rfc2217://``: a serial port shared over the network (a terminal server), polled transport.

The terminal server is pyserial's own RFC 2217 ``PortManager`` in threads, in
front of a pty emulator: emulator → pty → RFC 2217 server → TCP → agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path

import pytest
import serial
from serial.rfc2217 import PortManager

from agent.devices.base import DeviceConfig
from agent.devices.registry import build_device
from agent.devices.testing import RecordingContext
from agent.emulators import Emulator


class _SocketWriter:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


class _PtyPort(serial.Serial):  # type: ignore[misc]
    """A pty has no modem lines (TIOCMGET fails); a terminal server reports them: say idle."""

    cts = dsr = cd = property(lambda _: True)  # clear to send, data set ready, carrier
    ri = property(lambda _: False)  # no ring

    def _update_rts_state(self) -> None:
        pass  # nor can it set RTS / DTR, which the client asks for while opening

    def _update_dtr_state(self) -> None:
        pass


class Rfc2217Server:
    """One client at a time, like a terminal server port."""

    def __init__(self, serial_url: str) -> None:
        self.serial_url = serial_url
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        port = _PtyPort(self.serial_url, timeout=0.05)
        manager = PortManager(port, _SocketWriter(conn))

        def net_to_serial() -> None:
            with contextlib.suppress(OSError):
                while not self.stop.is_set() and (data := conn.recv(4096)):
                    port.write(b"".join(manager.filter(data)))

        def serial_to_net() -> None:
            with contextlib.suppress(OSError, serial.SerialException):
                while not self.stop.is_set():
                    if data := port.read(4096):
                        conn.sendall(b"".join(manager.escape(data)))

        pump = threading.Thread(target=net_to_serial, daemon=True)
        pump.start()
        serial_to_net()
        conn.close()
        port.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning")
def test_queue_line_through_an_rfc2217_terminal_server(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Emulator.pty("queue-line", tmp_path / "tty") as emulator:
            server = Rfc2217Server(emulator.endpoint)
            context = RecordingContext("queue-1")
            config = DeviceConfig(
                id="queue-1", protocol="queue-line", url=f"rfc2217://127.0.0.1:{server.port}"
            )
            task = asyncio.create_task(build_device(config, context).run())
            try:
                async with asyncio.timeout(10):
                    await context.wait_for(lambda: context.links == [True])
                    await emulator.play(["OPEN", "ISSUE A001 cash V", "CALL A001 c2"])
                    await context.wait_for(lambda: len(context.events) == 3)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                server.close()
        assert context.types() == ["branch.opened", "ticket.issued", "ticket.called"]

    asyncio.run(main())
