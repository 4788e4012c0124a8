"""Emulator scripts: items → bytes per protocol, script files, the documented examples, and
the pty and TCP emulators (every peer gets the script from its start)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
import serial

from agent.devices import evaluator_frame
from agent.emulators import Emulator, encode_item, parse_script_line
from agent.emulators.__main__ import load_script
from agent.emulators.script import Item

EMULATORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "emulators.md"


def test_text_items_per_protocol() -> None:
    assert encode_item("queue-line", "OPEN") == b"OPEN\r\n"
    assert encode_item("intercom-line", "IN 1 s42") == b"IN 1 s42\r\n"
    assert encode_item("evaluator-frame", "request 1 A017 t.wang") == (
        evaluator_frame.encode_request(1, "A017", "t.wang")
    )
    assert encode_item("evaluator-frame", "rate 2 4") == evaluator_frame.encode_rating(2, 4)
    assert encode_item("evaluator-frame", "cancel 3") == evaluator_frame.encode_cancel(3)
    assert encode_item("queue-line", b"\x00raw") == b"\x00raw"


@pytest.mark.parametrize("item", ["rate 1", "rate x 1", "request", "smile 1", "cancel 1 2"])
def test_bad_pad_commands(item: str) -> None:
    with pytest.raises(ValueError):
        encode_item("evaluator-frame", item)


def test_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="no emulator"):
        encode_item("modbus", "x")


def test_script_lines() -> None:
    assert parse_script_line("  # comment") is None
    assert parse_script_line("") is None
    assert parse_script_line("sleep 0.5") == 0.5
    assert parse_script_line("hex 02 ff") == b"\x02\xff"
    assert parse_script_line("ISSUE A001 cash ") == "ISSUE A001 cash"


def test_pty_emulator_sends_and_records(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Emulator.pty("intercom-line", tmp_path / "tty") as emulator:
            assert os.path.realpath(emulator.endpoint).startswith("/dev/")
            fd = os.open(emulator.endpoint, os.O_RDWR | os.O_NOCTTY)
            try:
                await emulator.play(["IN 1 s42", 0.0, b"raw"])
                got = b""
                while len(got) < 13:  # a pty may hand the two writes over in two reads
                    got += os.read(fd, 100)
                assert got == b"IN 1 s42\r\nraw"
                os.write(fd, b"NOTE n-1 3 hi\r\nNOTE n-2")
                await emulator.wait_for(lambda: len(emulator.received) == 23, timeout=2)
                assert emulator.lines() == [b"NOTE n-1 3 hi"]  # the partial one is not a line
            finally:
                os.close(fd)

    asyncio.run(main())


# -- every peer gets the script from its start --------------------------------------------------

SCRIPT: list[Item] = ["OPEN", "ISSUE A001 cash", 0.0, b"hex\r\n", "CALL A001 c1"]
PLAYED = b"OPEN\r\nISSUE A001 cash\r\nhex\r\nCALL A001 c1\r\n"


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(5):
        return await reader.readexactly(size)


def test_every_tcp_client_gets_the_whole_script_from_its_start() -> None:
    async def main() -> None:
        async with await Emulator.tcp("queue-line") as emulator:
            emulator.serve(SCRIPT, delay=0.0)
            host, port = emulator.endpoint.removeprefix("tcp://").rsplit(":", 1)
            for _ in range(2):  # e.g. the doctor first, then the agent
                reader, writer = await asyncio.open_connection(host, int(port))
                assert await read_exactly(reader, len(PLAYED)) == PLAYED
                writer.close()
                await emulator.wait_for(lambda: not emulator.connected)
            assert emulator.peers_seen == 2

    asyncio.run(main())


def test_repeat_and_loop() -> None:
    async def main() -> None:
        async with await Emulator.tcp("queue-line") as emulator:
            host, port = emulator.endpoint.removeprefix("tcp://").rsplit(":", 1)
            emulator.serve(SCRIPT, delay=0.0, repeat=2)
            reader, writer = await asyncio.open_connection(host, int(port))
            assert await read_exactly(reader, 2 * len(PLAYED)) == 2 * PLAYED
            writer.write_eof()
            assert await reader.read() == b""  # two rounds, then nothing more
            writer.close()
            emulator.serve([*SCRIPT, 0.01], delay=0.0, repeat=None)
            reader, writer = await asyncio.open_connection(host, int(port))
            assert await read_exactly(reader, 5 * len(PLAYED)) == 5 * PLAYED
            writer.close()
        with pytest.raises(ValueError, match="at least 1"):
            emulator.serve(SCRIPT, repeat=0)

    asyncio.run(main())


def test_a_pty_plays_only_once_something_opened_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with await Emulator.pty("queue-line", tmp_path / "tty") as emulator:
            emulator.serve(SCRIPT, delay=0.0)
            # Nobody has the port open: no playback. Played now, it would be lost, since
            # opening a serial port flushes its input (pyserial does).
            with pytest.raises(TimeoutError):
                await emulator.wait_client(timeout=0.3)
            for opened in (1, 2):  # the first opener, then the port opened again

                def seen(count: int = opened) -> bool:
                    return emulator.peers_seen == count

                port = serial.serial_for_url(emulator.endpoint, timeout=0.05)
                try:
                    await emulator.wait_for(seen)
                    got = b""
                    async with asyncio.timeout(5):
                        while len(got) < len(PLAYED):
                            got += await asyncio.to_thread(port.read, 100)
                    assert got == PLAYED  # the whole script, from its start, each time
                finally:
                    port.close()
                await emulator.wait_for(lambda: not emulator.connected)

    asyncio.run(main())


@pytest.mark.parametrize("block", re.findall(r"```text\n(.*?)```", EMULATORS_DOC.read_text(), re.S))
def test_the_documented_example_scripts_load(block: str, tmp_path: Path) -> None:
    protocol = block.splitlines()[0].removeprefix("# ")
    script = tmp_path / "script.txt"
    script.write_text(block)
    items = load_script(script, protocol)
    assert items and all(encode_item(protocol, i) for i in items if not isinstance(i, float))
