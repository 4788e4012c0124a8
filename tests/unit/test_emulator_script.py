"""Emulator scripts: items → bytes per protocol, script files, the pty emulator itself."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agent.devices import evaluator_frame
from agent.emulators import Emulator, encode_item, parse_script_line


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
