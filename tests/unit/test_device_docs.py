"""The examples in docs/devices/*.md are valid: each example line decodes to an event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.devices import evaluator_frame
from agent.devices.frames import BadFrame
from agent.devices.intercom_line import IntercomCodec
from agent.devices.queue_line import QueueLineCodec
from agent.devices.registry import DEVICE_KINDS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "devices"


def example_lines(name: str) -> list[bytes]:
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    block = re.search(r"## Example session.*?```text\n(.*?)```", text, re.S)
    assert block is not None, f"{name}.md has no example session"
    return [line.encode() for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(DEVICE_KINDS))
def test_every_kind_has_a_page(name: str) -> None:
    assert (DOCS / f"{name}.md").is_file()


def test_queue_line_example_session() -> None:
    lines = example_lines("queue-line")
    results = QueueLineCodec().feed(bytearray(b"".join(line + b"\r\n" for line in lines)))
    assert not [r for r in results if isinstance(r, BadFrame)], results
    assert len(results) == len(lines)


def test_intercom_example_session() -> None:
    lines = example_lines("intercom-line")
    results = IntercomCodec().feed(bytearray(b"".join(line + b"\n" for line in lines)))
    assert not [r for r in results if isinstance(r, BadFrame)], results
    assert len(results) == len(lines)


def test_evaluator_example_frames_are_the_documented_hex() -> None:
    text = (DOCS / "evaluator-frame.md").read_text(encoding="utf-8")
    documented = re.findall(r"\| `((?:[0-9a-f]{2} )+[0-9a-f]{2})` \|", text)
    assert [bytes.fromhex(h) for h in documented] == [
        evaluator_frame.encode_request(1, "A017", "t.wang"),
        evaluator_frame.encode_rating(1, 1),
        evaluator_frame.encode_cancel(3),
    ]
