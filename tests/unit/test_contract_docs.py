"""docs/contract.md cannot drift: every JSON example decodes, every reason is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest

from branchwatch.contract import (
    EVENT_TYPES,
    REJECT_REASONS,
    Notify,
    Replay,
    Status,
    decode_command,
    decode_events,
    decode_status,
)
from branchwatch.contract.ids import (
    LOCAL_ID_PATTERN,
    MAX_BATCH_EVENTS,
    MAX_MESSAGE_BYTES,
    SITE_ID_PATTERN,
    TOKEN_PATTERN,
)
from branchwatch.errors import ContractError

DOC: Final = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
TEXT: Final = DOC.read_text(encoding="utf-8")
JSON_BLOCKS: Final = re.findall(r"^```json\n(.*?)^```$", TEXT, flags=re.DOTALL | re.MULTILINE)
COMMAND_TYPES: Final = {"replay", "notify"}


def kind_of(value: Any) -> str:
    """Which decoder a documented example is for, judged by its content."""
    if isinstance(value, list) or (isinstance(value, dict) and value.get("type") in EVENT_TYPES):
        return "events"
    if isinstance(value, dict) and "state" in value:
        return "status"
    if isinstance(value, dict) and value.get("type") in COMMAND_TYPES:
        return "command"
    raise AssertionError(f"a ```json block on no topic: {value!r}")


def blocks(kind: str) -> list[bytes]:
    return [b.encode() for b in JSON_BLOCKS if kind_of(msgspec.json.decode(b)) == kind]


def test_doc_has_json_examples() -> None:
    assert len(JSON_BLOCKS) >= 21 + 2 + 2


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=f"block{i}") for i, b in enumerate(JSON_BLOCKS)]
)
def test_every_json_block_is_a_valid_message(block: str) -> None:
    payload = block.encode()
    kind = kind_of(msgspec.json.decode(payload))
    if kind == "events":
        assert decode_events(payload)
    elif kind == "status":
        assert isinstance(decode_status(payload), Status)
    else:
        assert decode_command(payload).v == 1


def test_every_event_type_has_an_example() -> None:
    documented = {e.__struct_config__.tag for b in blocks("events") for e in decode_events(b)}
    assert documented == set(EVENT_TYPES)


def test_every_event_type_has_its_own_single_object_example() -> None:
    singles = [msgspec.json.decode(b) for b in blocks("events")]
    types = [v["type"] for v in singles if isinstance(v, dict)]
    assert sorted(types) == sorted(EVENT_TYPES)


def test_an_array_example_is_documented() -> None:
    arrays = [b for b in blocks("events") if isinstance(msgspec.json.decode(b), list)]
    assert arrays
    assert all(len(decode_events(b)) > 1 for b in arrays)


def test_full_status_and_will_are_documented() -> None:
    statuses = [decode_status(b) for b in blocks("status")]
    assert any(s.state == "online" and s.devices and s.spool is not None for s in statuses)
    wills = [msgspec.json.decode(b) for b in blocks("status")]
    assert {"v": 1, "state": "offline", "session": 17} in wills
    # The will carries the session of the online status it stands in for.
    assert {s.session for s in statuses} == {17}


def test_both_commands_are_documented() -> None:
    commands = [decode_command(b) for b in blocks("command")]
    assert {type(c) for c in commands} == {Replay, Notify}


# --------------------------------------------------------------------------- rejection table


def rejection_rows() -> list[tuple[str, str]]:
    """(reason, example) of each row of the "Rejection reasons" table."""
    section = TEXT.split("## Rejection reasons", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        match = re.fullmatch(r"`([a-z_]+)`", cells[0]) if cells else None
        if match:
            rows.append((match.group(1), cells[2]))
    return rows


def test_rejection_table_lists_every_reason() -> None:
    reasons = [reason for reason, _ in rejection_rows()]
    assert len(reasons) == len(set(reasons))
    assert set(reasons) == set(REJECT_REASONS) | {"bad_topic"}


@pytest.mark.parametrize(
    ("reason", "example"),
    [(r, e) for r, e in rejection_rows() if e.startswith("`")],
)
def test_rejection_table_examples_give_their_reason(reason: str, example: str) -> None:
    with pytest.raises(ContractError) as info:
        decode_events(example.strip("`").encode())
    assert info.value.reason == reason


def test_most_reasons_have_an_example() -> None:
    without = {r for r, e in rejection_rows() if not e.startswith("`")}
    assert without == {"too_large", "too_many_events", "bad_topic"}


# --------------------------------------------------------------------------- rules and limits


@pytest.mark.parametrize("pattern", [SITE_ID_PATTERN, LOCAL_ID_PATTERN, TOKEN_PATTERN])
def test_identifier_patterns_are_the_codes(pattern: str) -> None:
    assert pattern.startswith("^")
    assert pattern.endswith(r"\Z")
    assert f"`{pattern[1:-2]}`" in TEXT


def test_limits_are_the_codes() -> None:
    assert MAX_MESSAGE_BYTES == 64 * 1024
    assert "64 KiB (65,536 bytes" in TEXT
    assert f"1–{MAX_BATCH_EVENTS}" in TEXT
