"""The http kind against a real socket: auth, bad JSON, contract errors, a good batch, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.devices.base import DeviceConfig
from agent.devices.http import HttpDevice, parse_body
from agent.devices.testing import RecordingContext, SchemaChecks

TOKEN = "s3cret-token"
NOW = 1_764_054_000.0


async def request(
    port: int,
    body: bytes | None,
    *,
    token: str | None = TOKEN,
    method: str = "POST",
    path: str = "/events",
    extra: str = "",
    reader_writer: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
) -> tuple[int, dict[str, str], Any]:
    reader, writer = reader_writer or await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: agent\r\n{extra}"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + (body or b""))
    status_line = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    payload = json.loads(await reader.readexactly(int(headers["content-length"])))
    if reader_writer is None:
        writer.close()
    return int(status_line.split()[1]), headers, payload


def serve(
    tmp_path: Path,
    body: Callable[[int, RecordingContext], Awaitable[None]],
    **options: Any,
) -> RecordingContext:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    context = RecordingContext("qms-1")
    config = DeviceConfig(
        id="qms-1", protocol="http", url="127.0.0.1:0",
        options={"token_file": str(token_file), **options},
    )  # fmt: skip
    device = HttpDevice(config, context, clock=lambda: NOW)

    async def main() -> None:
        async with asyncio.timeout(10):
            task = asyncio.create_task(device.run())
            await device.listening.wait()
            assert context.links == [True]
            try:
                await body(device.port, context)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return context


def test_good_batch_is_accepted_whole(tmp_path: Path) -> None:
    batch = [
        {"type": "ticket.issued", "ts": NOW - 5, "ticket": "A017", "service": "cash"},
        {
            "type": "ticket.called",
            "ticket": "A017",
            "counter": "c3",
            "note": "extra fields ignored",
        },
        {"type": "evaluation.requested", "counter": "c3", "teller": None},
    ]

    async def body(port: int, ctx: RecordingContext) -> None:
        status, _, payload = await request(port, json.dumps(batch).encode())
        assert (status, payload) == (202, {"accepted": 3})
        status, _, payload = await request(port, b'{"type": "branch.opened"}')
        assert (status, payload) == (202, {"accepted": 1})

    ctx = serve(tmp_path, body)
    assert [(e.type, e.ts, e.fields) for e in ctx.events] == [
        ("ticket.issued", NOW - 5, {"ticket": "A017", "service": "cash", "vip": False}),
        ("ticket.called", NOW, {"ticket": "A017", "counter": "c3"}),
        ("evaluation.requested", NOW, {"counter": "c3"}),
        ("branch.opened", NOW, {}),
    ]
    assert ctx.bad == []


def test_each_posted_event_is_checked_once() -> None:
    batch = [{"type": "ticket.walkout", "ticket": f"A{i}"} for i in range(3)]
    with SchemaChecks() as calls:
        events = parse_body(json.dumps(batch).encode(), NOW)
    assert calls.checks == ["msgspec convert"] * 3  # the JSON parse itself checks nothing
    assert [(e.seq, e.device, e.ts) for e in events] == [(0, "unstamped", NOW)] * 3


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_missing_or_wrong_token_is_401(tmp_path: Path, token: str | None) -> None:
    async def body(port: int, ctx: RecordingContext) -> None:
        status, headers, payload = await request(port, b'{"type": "branch.opened"}', token=token)
        assert status == 401
        assert headers["www-authenticate"].startswith("Bearer")
        assert payload["error"] == "unauthorized"
        assert TOKEN not in json.dumps(payload)

    ctx = serve(tmp_path, body)
    assert ctx.events == []
    assert ctx.bad_reasons() == ["unauthorized"]


BAD_BODIES = [
    (b'{"type": "branch.opened"', "bad_json", None),
    (b"[]", "empty_batch", None),
    (b"42", "bad_shape", 0),
    (b'[{"type": "branch.opened"}, "x"]', "bad_shape", 1),
    (b'{"type": "ticket.printed"}', "unknown_type", 0),
    (b'{"type": "ticket.called", "ticket": "A1"}', "missing_field", 0),
    (b'[{"type": "branch.opened"}, {"type": "position.staffed", "position": 0}]', "bad_value", 1),
    (b'{"type": "ticket.walkout", "ticket": "A 1"}', "bad_identifier", 0),
    (b'{"type": "branch.opened", "seq": 5}', "agent_field", 0),
    (b'{"type": "branch.opened", "device": "other"}', "agent_field", 0),
    (b'{"type": "branch.opened", "v": 1}', "agent_field", 0),
    (b'{"type": "branch.opened", "ts": 1764054000000}', "bad_value", 0),
]


@pytest.mark.parametrize(("raw", "error", "index"), BAD_BODIES, ids=[b[1] for b in BAD_BODIES])
def test_bad_bodies_are_400_and_nothing_is_emitted(
    tmp_path: Path, raw: bytes, error: str, index: int | None
) -> None:
    async def body(port: int, ctx: RecordingContext) -> None:
        status, _, payload = await request(port, raw)
        assert status == 400
        assert payload["error"] == error
        assert payload["detail"]
        assert payload.get("index") == index

    ctx = serve(tmp_path, body)
    assert ctx.events == []  # a batch is taken whole or not at all
    assert ctx.bad_reasons() == [error]


def test_routes_methods_and_limits(tmp_path: Path) -> None:
    async def body(port: int, ctx: RecordingContext) -> None:
        assert (await request(port, None, method="GET"))[0] == 405
        assert (await request(port, b"{}", path="/metrics"))[0] == 404
        assert (await request(port, None))[0] == 411
        big = b"[" + b" " * (64 * 1024) + b"]"
        assert (await request(port, big))[0] == 413
        status, _, _ = await request(port, None, extra="Transfer-Encoding: chunked\r\n")
        assert status == 411

    ctx = serve(tmp_path, body)
    assert ctx.events == []


def test_keep_alive_serves_several_requests_on_one_connection(tmp_path: Path) -> None:
    async def body(port: int, ctx: RecordingContext) -> None:
        pair = await asyncio.open_connection("127.0.0.1", port)
        for ticket in ("A1", "A2", "A3"):
            raw = json.dumps({"type": "ticket.walkout", "ticket": ticket}).encode()
            status, headers, _ = await request(port, raw, reader_writer=pair)
            assert status == 202 and headers["connection"] == "keep-alive"
        pair[1].close()

    ctx = serve(tmp_path, body)
    assert [e.fields["ticket"] for e in ctx.events] == ["A1", "A2", "A3"]


def test_a_stalled_client_is_dropped_after_the_timeout(tmp_path: Path) -> None:
    async def body(port: int, ctx: RecordingContext) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /events HTTP/1.1\r\nContent-Length: 10\r\n")  # and then nothing
        assert await reader.read() == b""  # the server closed it
        writer.close()
        status, _, _ = await request(port, b'{"type": "branch.opened"}')  # still serving
        assert status == 202

    serve(tmp_path, body, timeout=0.2)


def test_limits_of_a_batch_and_of_a_header_line(tmp_path: Path) -> None:
    walkouts = [{"type": "ticket.walkout", "ticket": f"A{i}"} for i in range(501)]

    async def body(port: int, ctx: RecordingContext) -> None:
        status, _, payload = await request(port, json.dumps(walkouts[:500]).encode())
        assert (status, payload) == (202, {"accepted": 500})
        status, _, payload = await request(port, json.dumps(walkouts).encode())
        assert (status, payload["error"]) == (400, "too_many_events")
        status, _, _ = await request(port, b"{}", extra=f"X-Long: {'x' * 9000}\r\n")
        assert status == 431

    ctx = serve(tmp_path, body)
    assert len(ctx.events) == 500
