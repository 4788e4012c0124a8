"""Table-driven tests of the status object and the commands."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pytest

from branchwatch.contract import (
    REJECT_REASONS,
    DeviceStatus,
    Notify,
    Replay,
    SpoolStatus,
    Status,
    decode_command,
    decode_status,
    encode,
)
from branchwatch.contract.ids import MAX_MESSAGE_BYTES
from tests.unit.test_contract_codec import TS, dumps, padded, reason_of, without

# --------------------------------------------------------------------------- status

FULL_STATUS: Final[dict[str, Any]] = {
    "v": 1,
    "state": "online",
    "session": 17,
    "ts": TS,
    "version": "0.1.0",
    "devices": {
        "queue-1": {"kind": "queue", "link": "up"},
        "pad-c3": {"kind": "evaluator", "link": "down"},
    },
    "spool": {"depth": 3, "oldest_ts": TS - 60, "dropped": 0},
}
WILL: Final[dict[str, Any]] = {"v": 1, "state": "offline", "session": 17}


def test_full_status_decodes() -> None:
    status = decode_status(dumps(FULL_STATUS))
    assert status == Status(
        v=1,
        state="online",
        session=17,
        ts=TS,
        version="0.1.0",
        devices={
            "queue-1": DeviceStatus(kind="queue", link="up"),
            "pad-c3": DeviceStatus(kind="evaluator", link="down"),
        },
        spool=SpoolStatus(depth=3, oldest_ts=TS - 60, dropped=0),
    )
    assert decode_status(encode(status)) == status


def test_will_with_only_v_state_session_decodes() -> None:
    status = decode_status(dumps(WILL))
    assert (status.v, status.state, status.session) == (1, "offline", 17)
    assert (status.ts, status.version, status.devices, status.spool) == (None, None, {}, None)
    assert decode_status(encode(status)) == status


def test_status_spool_defaults_and_extra_fields() -> None:
    status = decode_status(dumps(WILL | {"spool": {}, "uptime": 5, "cpu": {"load": 0.5}}))
    assert status.spool == SpoolStatus(depth=0, oldest_ts=None, dropped=0)
    assert decode_status(dumps(FULL_STATUS | {"future": [1, 2]})) == decode_status(
        dumps(FULL_STATUS)
    )


def _status(**fields: Any) -> bytes:
    return dumps(FULL_STATUS | fields)


STATUS_REJECTIONS: Final[list[tuple[str, bytes, str]]] = [
    ("too_large", padded(WILL, MAX_MESSAGE_BYTES + 1), "just_over_64k"),
    ("bad_json", b"", "empty"),
    ("bad_json", b'{"v":1,"state":"online"', "truncated"),
    ("bad_json", b"[" * 5000, "nested_too_deeply"),
    ("bad_shape", b"null", "null"),
    ("bad_shape", b'"online"', "string"),
    ("bad_shape", dumps([WILL]), "array_of_status"),
    ("bad_shape", b"[]", "empty_array"),
    ("unsupported_version", dumps(WILL | {"v": 2}), "v2"),
    ("unsupported_version", dumps({"v": 2, "mood": "great"}), "v2_other_shape"),
    ("missing_field", dumps(without(WILL, "session")), "no_session"),
    ("missing_field", dumps(without(WILL, "state")), "no_state"),
    ("missing_field", dumps(without(WILL, "v")), "no_v"),
    ("missing_field", _status(devices={"queue-1": {"kind": "queue"}}), "device_no_link"),
    ("bad_identifier", _status(devices={"queue 1": {"kind": "queue", "link": "up"}}), "dev_key"),
    ("bad_identifier", _status(devices={"q": {"kind": "Queue", "link": "up"}}), "device_kind"),
    ("bad_value", _status(state="sleeping"), "state"),
    ("bad_value", _status(session=-1), "session_negative"),
    ("bad_value", _status(session="17"), "session_string"),
    ("bad_value", _status(ts=-5), "ts_negative"),
    ("bad_value", _status(version="x" * 201), "version_too_long"),
    ("bad_value", _status(devices=[]), "devices_array"),
    ("bad_value", _status(devices={"q": {"kind": "queue", "link": "flaky"}}), "link"),
    ("bad_value", _status(spool={"depth": -1}), "spool_depth_negative"),
    ("bad_value", _status(spool={"oldest_ts": "yesterday"}), "spool_oldest_ts"),
]


@pytest.mark.parametrize(
    ("reason", "payload"),
    [pytest.param(r, p, id=f"{r}-{i}") for r, p, i in STATUS_REJECTIONS],
)
def test_status_rejections(reason: str, payload: bytes) -> None:
    assert reason_of(decode_status, payload) == reason


# --------------------------------------------------------------------------- commands

REPLAY: Final[dict[str, Any]] = {"v": 1, "type": "replay", "from_seq": 1200}
NOTIFY: Final[dict[str, Any]] = {
    "v": 1,
    "type": "notify",
    "id": "n-42",
    "position": 1,
    "text": "Post 1 empty for 2 min: please cover the greeting desk",
}


def test_replay_decodes_and_round_trips() -> None:
    command = decode_command(dumps(REPLAY))
    assert command == Replay(v=1, from_seq=1200)
    assert decode_command(encode(command)) == command
    assert msgspec.json.decode(encode(command)) == REPLAY


def test_notify_decodes_and_round_trips() -> None:
    command = decode_command(dumps(NOTIFY))
    assert isinstance(command, Notify)
    assert (command.id, command.position, command.text) == ("n-42", 1, NOTIFY["text"])
    assert decode_command(encode(command)) == command
    assert msgspec.json.decode(encode(command)) == NOTIFY


def test_command_extra_fields_are_ignored() -> None:
    assert decode_command(dumps(REPLAY | {"reason": "gap"})) == Replay(v=1, from_seq=1200)


def _notify(**fields: Any) -> bytes:
    return dumps(NOTIFY | fields)


COMMAND_REJECTIONS: Final[list[tuple[str, bytes, str]]] = [
    ("too_large", padded(REPLAY, MAX_MESSAGE_BYTES + 1), "just_over_64k"),
    ("bad_json", b"{", "truncated"),
    ("bad_json", b"replay", "bare_word"),
    ("bad_shape", dumps([REPLAY]), "array_of_command"),
    ("bad_shape", b"[]", "empty_array"),
    ("bad_shape", b"0", "number"),
    ("unsupported_version", dumps(REPLAY | {"v": 2}), "v2"),
    ("unsupported_version", dumps({"v": 2, "type": "reboot"}), "v2_unknown_type"),
    ("unknown_type", dumps(REPLAY | {"type": "reboot"}), "unknown_type"),
    ("unknown_type", dumps(REPLAY | {"type": "Replay"}), "wrong_case"),
    ("missing_field", dumps(without(REPLAY, "type")), "no_type"),
    ("missing_field", dumps(without(REPLAY, "from_seq")), "replay_no_from_seq"),
    ("missing_field", dumps(without(NOTIFY, "text")), "notify_no_text"),
    ("missing_field", dumps(without(NOTIFY, "id")), "notify_no_id"),
    ("missing_field", dumps(without(NOTIFY, "position")), "notify_no_position"),
    ("missing_field", dumps(without(NOTIFY, "v")), "no_v"),
    ("bad_identifier", _notify(id="n 42"), "notice_id"),
    ("bad_identifier", _notify(id=""), "notice_id_empty"),
    ("bad_value", dumps(REPLAY | {"from_seq": -1}), "from_seq_negative"),
    ("bad_value", dumps(REPLAY | {"from_seq": "0"}), "from_seq_string"),
    ("bad_value", _notify(position=0), "position_0"),
    ("bad_value", _notify(position=100), "position_100"),
    ("bad_value", _notify(text="x" * 201), "text_201"),
    ("bad_value", _notify(text=None), "text_null"),
]


@pytest.mark.parametrize(
    ("reason", "payload"),
    [pytest.param(r, p, id=f"{r}-{i}") for r, p, i in COMMAND_REJECTIONS],
)
def test_command_rejections(reason: str, payload: bytes) -> None:
    assert reason_of(decode_command, payload) == reason


def test_status_and_command_reasons_are_exercised() -> None:
    # Batch reasons do not apply to a single status or command object.
    single = set(REJECT_REASONS) - {"empty_batch", "too_many_events", "seq_order"}
    assert {r for r, _, _ in STATUS_REJECTIONS} == single - {"unknown_type"}
    assert {r for r, _, _ in COMMAND_REJECTIONS} == single
