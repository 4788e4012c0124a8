"""Transports: byte links to devices, and the reconnect loop every serial/TCP kind runs.

Separate from the codecs (pymodbus style): a :class:`Link` moves bytes, the
codec gives them meaning. :func:`open_link` takes

- ``tcp://HOST:PORT`` and ``socket://HOST:PORT``: asyncio TCP;
- anything else is a pyserial URL (``/dev/ttyUSB0``, a pty path, ``loop://``,
  ``rfc2217://HOST:PORT``) opened with ``serial.serial_for_url``. A port with
  a file descriptor runs on pyserial-asyncio-fast's event-loop transport;
  URL handlers without one (``loop://``, ``rfc2217://``) are polled from a
  worker thread, since asyncio cannot wait on them.

:func:`run_link` is the outer loop (aiomqtt style): open, report the link up,
let the kind's session read until EOF or an error, report it down, back off
exponentially, open again, until cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import serial
import serial_asyncio_fast

from agent.devices.base import DeviceContext
from agent.errors import DeviceConfigError
from branchwatch.retry import Backoff

log = logging.getLogger(__name__)

READ_SIZE: Final = 4096
POLL_TIMEOUT: Final = 0.05  # how long a polled read blocks its worker thread


class Link(Protocol):
    """An open byte link. ``read`` returns b"" at EOF and raises OSError on a lost link."""

    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class StreamLink:
    """A link over asyncio streams (TCP, or a serial port with a file descriptor)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(READ_SIZE)

    async def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionResetError("link closed")
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class PolledLink:
    """A pyserial port without a file descriptor, read from a worker thread."""

    def __init__(self, port: serial.SerialBase) -> None:
        self._port = port
        port.timeout = POLL_TIMEOUT

    async def read(self) -> bytes:
        while True:
            if not self._port.is_open:
                return b""
            data: bytes = await asyncio.to_thread(self._port.read, READ_SIZE)
            if data:
                return data

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._port.write, data)

    def close(self) -> None:
        self._port.close()


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError as exc:
        raise DeviceConfigError(f"bad port in {url!r}") from exc
    if not parsed.hostname or port is None:
        raise DeviceConfigError(f"{url!r}: expected {parsed.scheme}://HOST:PORT")
    return parsed.hostname, port


# pyserial's URL handlers (serial.protocol_handler_packages), plus our tcp://.
SCHEMES: Final = frozenset({"tcp", "socket", "rfc2217", "loop", "spy", "hwgrep", "alt", "cp2110"})


def check_url(url: str) -> None:
    """DeviceConfigError now for a url that can never open (a config typo), not at each retry."""
    if not url:
        raise DeviceConfigError("no device url configured")
    scheme = urllib.parse.urlsplit(url).scheme if "://" in url else ""
    if scheme and scheme not in SCHEMES:
        raise DeviceConfigError(f"device url {url!r}: unknown scheme (known: {sorted(SCHEMES)})")
    if scheme in ("tcp", "socket"):
        _host_port(url)


async def open_link(url: str, baudrate: int = 9600) -> Link:
    """Open ``url``; OSError (serial.SerialException is one) when the device is not there."""
    check_url(url)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("tcp", "socket"):
        host, port = _host_port(url)
        reader, writer = await asyncio.open_connection(host, port)
        return StreamLink(reader, writer)
    try:
        port_ = await asyncio.to_thread(serial.serial_for_url, url, baudrate=baudrate)
    except ValueError as exc:  # unknown URL scheme or bad setting: a config error, not a link loss
        raise DeviceConfigError(f"device url {url!r}: {exc}") from exc
    try:
        port_.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return PolledLink(port_)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await serial_asyncio_fast.connection_for_serial(loop, lambda: protocol, port_)
    return StreamLink(reader, asyncio.StreamWriter(transport, protocol, reader, loop))


Session = Callable[[Link], Awaitable[None]]


async def run_link(
    url: str,
    baudrate: int,
    context: DeviceContext,
    session: Session,
    backoff: Backoff,
    opener: Callable[[str, int], Awaitable[Link]] = open_link,
) -> None:
    """Keep a link to ``url`` open and run ``session`` on it, until cancelled.

    ``session`` returns when the link reaches EOF and may raise OSError when it
    is lost (a serial port unplugged raises SerialException, an OSError). The
    link state goes to the context only when it changes, and the first failed
    open already reports it down, so the core sees a device that was never there.
    """
    up: bool | None = None

    def report(now_up: bool) -> None:
        nonlocal up
        if now_up != up:
            up = now_up
            context.set_link(now_up)

    while True:
        try:
            link = await opener(url, baudrate)
        except OSError as exc:
            if up is not False:
                log.warning("device %s: cannot open %s: %s", context.device_id, url, exc)
            report(False)
            await asyncio.sleep(backoff.next())
            continue
        report(True)
        backoff.reset()
        log.info("device %s: link up on %s", context.device_id, url)
        try:
            await session(link)
            reason = "end of stream"
        except OSError as exc:
            reason = str(exc) or type(exc).__name__
        finally:
            with contextlib.suppress(OSError):
                link.close()
        log.warning("device %s: link down (%s), reconnecting", context.device_id, reason)
        report(False)
        await asyncio.sleep(backoff.next())


async def read_into(link: Link, feed: Callable[[bytes], None]) -> None:
    """The usual session: every chunk read goes to ``feed`` until EOF."""
    while data := await link.read():
        feed(data)
