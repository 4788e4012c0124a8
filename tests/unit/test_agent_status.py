"""The agent's online status carries its devices' bad frames, counted by reason."""

from __future__ import annotations

import msgspec

from agent import status
from agent.spool import Spool
from branchwatch.contract import decode_status
from branchwatch.contract.messages import MAX_BAD_FRAME_REASONS, OTHER_REASON
from tests.unit.test_agent_core import make_core, spool  # noqa: F401 - the fixture


def test_bad_frames_per_device_and_reason_are_in_the_online_status(spool: Spool) -> None:  # noqa: F811
    core = make_core(spool, 1, 2)
    first, second = core.slots["d0"], core.slots["d1"]
    for _ in range(3):
        first.bad_frame("bad_args", "ISSUE A1")
    first.bad_frame("unknown_verb", "HELLO")
    online = decode_status(status.online(core, 7))
    assert online.devices["d0"].bad_frames == {"bad_args": 3, "unknown_verb": 1}
    assert online.devices["d1"].bad_frames == {}
    # A device without bad frames leaves the field out: the status reads as before.
    devices = msgspec.json.decode(status.online(core, 7))["devices"]
    assert "bad_frames" not in devices["d1"]
    second.bad_frame("checksum")
    assert decode_status(status.online(core, 8)).devices["d1"].bad_frames == {"checksum": 1}


def test_a_new_reason_republishes_the_status_and_more_of_it_waits(spool: Spool) -> None:  # noqa: F811
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.bad_frame("bad_args")
    assert core.status_changed.is_set()
    core.status_changed.clear()
    slot.bad_frame("bad_args")
    assert not core.status_changed.is_set()
    slot.bad_frame("line_too_long")
    assert core.status_changed.is_set()


def test_reasons_beyond_the_bound_or_not_tokens_count_as_other(spool: Spool) -> None:  # noqa: F811
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.bad_frame("Not A Token")
    for n in range(MAX_BAD_FRAME_REASONS + 3):
        slot.bad_frame(f"reason_{n}")
    slot.bad_frame("reason_0")  # known already: counted under its own name
    counts = decode_status(status.online(core, 1)).devices["d0"].bad_frames
    assert len(counts) == MAX_BAD_FRAME_REASONS
    assert counts["reason_0"] == 2
    assert counts[OTHER_REASON] == 1 + 4  # the bad name, and the reasons beyond the bound
    assert sum(counts.values()) == MAX_BAD_FRAME_REASONS + 5
