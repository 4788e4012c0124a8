"""The status object an agent retains and the commands it is sent (docs/contract.md)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from branchwatch.contract.ids import (
    Count,
    LocalId,
    Position,
    Seq,
    Session,
    ShortText,
    Timestamp,
    Token,
    Version,
)

# Reasons a device's bad frames are counted under in one status; more fold into "other".
MAX_BAD_FRAME_REASONS: Final = 16
OTHER_REASON: Final = "other"


class DeviceStatus(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    kind: Token
    link: Literal["up", "down"]
    # Frames from the device its codec refused since the agent started, by reason
    # (optional: older agents leave it out, and so does one that saw none).
    bad_frames: Annotated[dict[Token, Count], Meta(max_length=MAX_BAD_FRAME_REASONS)] = (
        msgspec.field(default_factory=dict)
    )


class SpoolStatus(msgspec.Struct, frozen=True, gc=False):
    depth: Count = 0
    oldest_ts: Timestamp | None = None
    # Events the spool dropped (oldest first) because it reached its size bound.
    dropped: Count = 0
    # Events the agent could not store (its disk full or failing): refused, no seq taken.
    refused: Count = 0


class Status(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Retained on ``…/status``; the will carries only v, state and session."""

    v: Version
    state: Literal["online", "offline"]
    session: Session
    ts: Timestamp | None = None
    version: ShortText | None = None
    devices: dict[LocalId, DeviceStatus] = msgspec.field(default_factory=dict)
    spool: SpoolStatus | None = None


class Command(msgspec.Struct, tag_field="type", frozen=True, gc=False):
    v: Version


class Replay(Command, tag="replay", frozen=True):
    """Republish every event still held with ``seq >= from_seq``."""

    from_seq: Seq


class Notify(Command, tag="notify", frozen=True):
    """A floor notice for the intercom at ``position``.

    Both collectors of an HA pair send every notice under the same ``id``: a receiver
    shows an id once, remembering the last :data:`NOTICE_IDS_KEPT` it delivered.
    """

    id: LocalId
    position: Position
    text: ShortText


AnyCommand = Replay | Notify

# Notice ids a receiver remembers having delivered (the newest), so that the second
# twin's copy of a notice is not shown again.
NOTICE_IDS_KEPT: Final = 1000
