"""The ``http`` kind: contract events POSTed by queue-management software (docs/devices/http.md).

``POST /events`` with ``Authorization: Bearer <token>`` and a JSON body: one
event object or an array of 1–500, each without ``v``, ``seq`` and
``device`` (the agent adds them; ``ts`` is optional, default: receipt time).
The whole body is converted into contract events, with the contract's own
checks and rejection reasons, before any event is emitted, so a batch is
taken whole or not at all: 202, or 400 with
``{"error": <reason>, "detail": …, "index": n}``, 401, 404, 405, 411, 413.

A deliberately small HTTP/1.1 server on asyncio streams (stdlib only): one
request at a time per connection, keep-alive, bounded header and body sizes,
and a timeout on every read so an idle or slow client cannot hold a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from pathlib import Path
from typing import Any, Final

import msgspec

from agent.devices.base import UNSTAMPED, Clock, DeviceConfig, DeviceContext, check_options
from agent.devices.stream import number_option
from agent.errors import AgentError, DeviceConfigError, DeviceError
from branchwatch.contract.codec import convert_event
from branchwatch.contract.events import Event
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.contract.messages import Notify
from branchwatch.errors import ContractError

log = logging.getLogger(__name__)

MAX_HEADER_LINE: Final = 8 * 1024
MAX_HEADERS: Final = 64
AGENT_FIELDS: Final = tuple(UNSTAMPED)
_json: Final = msgspec.json.Decoder()


class RefusedRequestError(AgentError):
    """A request the http device answers with a 4xx status and a JSON error body."""

    def __init__(self, status: int, error: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"error": error, "detail": detail, **extra}


REASONS: Final = {
    202: "Accepted",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
}


def parse_listen(url: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``http://HOST:PORT`` → (host, port)."""
    hostport = url.removeprefix("http://").rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise DeviceConfigError(f"http device url {url!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def read_token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DeviceConfigError(f"token_file {path!r}: {exc}") from exc
    if not token:
        raise DeviceConfigError(f"token_file {path!r} is empty")
    return token


def parse_body(body: bytes, now: float) -> list[Event]:
    """The events of a body, or RefusedRequestError 400 naming what is wrong (and which event).

    The JSON is parsed untyped first only to add what the agent sets; each
    event is then checked once, by the contract's schema.
    """
    try:
        raw = _json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise RefusedRequestError(400, "bad_json", str(exc)) from exc
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise RefusedRequestError(400, "empty_batch", "the array holds no event")
    if len(items) > MAX_BATCH_EVENTS:
        raise RefusedRequestError(400, "too_many_events", f"{len(items)} > {MAX_BATCH_EVENTS}")
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise RefusedRequestError(
                400, "bad_shape", "each event must be a JSON object", index=index
            )
        for name in AGENT_FIELDS:
            if name in item:
                raise RefusedRequestError(
                    400, "agent_field", f"{name!r} is set by the agent, leave it out", index=index
                )
        try:
            events.append(convert_event({"ts": now, **item, **UNSTAMPED}))
        except ContractError as exc:
            raise RefusedRequestError(400, exc.reason, str(exc), index=index) from exc
    return events


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError as exc:  # over the stream's limit (MAX_HEADER_LINE)
        raise RefusedRequestError(
            431, "header_too_large", f"a line over {MAX_HEADER_LINE} bytes"
        ) from exc


class HttpDevice:
    kind = "http"

    def __init__(
        self, config: DeviceConfig, context: DeviceContext, clock: Clock | None = None
    ) -> None:
        check_options(config, ("token_file", "timeout"))
        token_file = config.options.get("token_file")
        if not isinstance(token_file, str):
            raise DeviceConfigError(f"device {config.id}: option 'token_file' (a path) is required")
        self.config = config
        self.context = context
        self.clock = clock or context.now
        self.host, self.port = parse_listen(config.url)
        self.timeout = number_option(config, "timeout", 10.0)
        self._token = read_token(token_file).encode()
        self.listening = asyncio.Event()

    async def run(self) -> None:
        try:
            server = await asyncio.start_server(
                self._client, self.host, self.port, limit=MAX_HEADER_LINE
            )
        except OSError as exc:
            self.context.set_link(False)
            raise DeviceError(f"http device {self.config.id}: cannot listen: {exc}") from exc
        async with server:
            self.port = server.sockets[0].getsockname()[1]  # the real one when 0 was asked
            self.context.set_link(True)
            self.listening.set()
            log.info("device %s: listening on %s:%d", self.config.id, self.host, self.port)
            try:
                await server.serve_forever()
            finally:
                self.context.set_link(False)

    async def notify(self, command: Notify) -> bool:
        return False

    def describe_link(self, up: bool) -> str:
        """How the doctor shows this link: a server's link is up while it listens."""
        return f"listening on {self.host}:{self.port}" if up else "not listening"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass  # the client went away or stalled: nothing to answer, hang up
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; True to keep the connection for another."""
        try:
            async with asyncio.timeout(self.timeout):
                head = await self._read_head(reader)
                if head is None:
                    return False
                method, path, headers = head
                status, body = await self._handle(reader, method, path, headers)
        except RefusedRequestError as exc:
            status, body, headers = exc.status, exc.body, {"connection": "close"}
            if status in (400, 401):
                self.context.bad_frame(str(exc.body["error"]), str(exc.body["detail"])[:200])
        keep = headers.get("connection", "").lower() != "close" and status < 400
        payload = msgspec.json.encode(body)
        extra = 'WWW-Authenticate: Bearer realm="branchwatch"\r\n' if status == 401 else ""
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        return keep

    async def _read_head(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str]] | None:
        request_line = await _readline(reader)
        if not request_line:
            return None
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise RefusedRequestError(400, "bad_request", "not an HTTP/1.x request line")
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = await _readline(reader)
            if line in (b"\r\n", b"\n", b""):
                return parts[0], parts[1], headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise RefusedRequestError(400, "bad_request", "malformed header line")
            headers[name.strip().lower()] = value.strip()
        raise RefusedRequestError(431, "too_many_headers", f"more than {MAX_HEADERS}")

    async def _handle(
        self, reader: asyncio.StreamReader, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if path.split("?", maxsplit=1)[0] != "/events":
            raise RefusedRequestError(404, "not_found", "POST events to /events")
        if method != "POST":
            raise RefusedRequestError(405, "method_not_allowed", "POST only")
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), self._token
        ):
            raise RefusedRequestError(401, "unauthorized", "missing or wrong bearer token")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise RefusedRequestError(411, "length_required", "send Content-Length, not chunked")
        length = headers.get("content-length", "")
        if not length.isdigit():
            raise RefusedRequestError(411, "length_required", "Content-Length is required")
        if int(length) > MAX_MESSAGE_BYTES:
            raise RefusedRequestError(413, "too_large", f"body over {MAX_MESSAGE_BYTES} bytes")
        body = await reader.readexactly(int(length))
        events = parse_body(body, self.clock())
        for event in events:
            self.context.emit(event)
        return 202, {"accepted": len(events)}
