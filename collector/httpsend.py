"""Sending a scrape: tens of MB of cached buffers, gathered by the kernel, never joined;
and whether the client takes them gzipped."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Final

SENDMSG_BATCH: Final = 512  # buffers per sendmsg call (well under IOV_MAX = 1024)
TLS_WRITE_BYTES: Final = 256 * 1024  # TLS has no sendmsg: fragments are joined up to this


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (named, or ``*``, with q > 0)."""
    wildcard = False
    for coding in (accept_encoding or "").split(","):
        name, _, params = coding.partition(";")
        name = name.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name in ("gzip", "x-gzip"):
            return quality > 0
        if name == "*":
            wildcard = quality > 0
    return wildcard


def send_gathered(sock: socket.socket, chunks: Iterable[bytes]) -> None:
    """``sendall`` for many buffers: ``sendmsg`` in batches, finishing short writes."""
    if isinstance(sock, ssl.SSLSocket):
        _send_joined(sock, chunks)
        return
    batch: list[bytes] = []
    for chunk in chunks:
        if chunk:
            batch.append(chunk)
            if len(batch) == SENDMSG_BATCH:
                _send_batch(sock, batch)
                batch.clear()
    if batch:
        _send_batch(sock, batch)


def _send_batch(sock: socket.socket, batch: list[bytes]) -> None:
    sent = sock.sendmsg(batch)
    for chunk in batch:
        if sent >= len(chunk):
            sent -= len(chunk)
            continue
        sock.sendall(memoryview(chunk)[sent:])
        sent = 0


def _send_joined(sock: ssl.SSLSocket, chunks: Iterable[bytes]) -> None:
    """TLS copies into records anyway: join fragments into writes of a useful size."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        if len(pending) >= TLS_WRITE_BYTES:
            sock.sendall(pending)
            pending.clear()
    if pending:
        sock.sendall(pending)
