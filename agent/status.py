"""The agent's status payloads (DESIGN §4): retained online status and the will.

``session`` orders them: the collector ignores a status from an older
session, so a will delivered late by the broker cannot mark a reconnected
agent offline.
"""

from __future__ import annotations

import msgspec

from agent.core import AgentCore
from branchwatch import __version__
from branchwatch.contract import SpoolStatus, Status, encode

_encoder = msgspec.json.Encoder()


def online(core: AgentCore, session: int) -> bytes:
    spool = core.spool
    status = Status(
        v=1,
        state="online",
        session=session,
        ts=core.clock(),
        version=__version__,
        devices=core.device_status(),
        spool=SpoolStatus(
            depth=spool.depth, oldest_ts=spool.oldest_unsent_ts(), dropped=spool.dropped
        ),
    )
    return encode(status)


def will(session: int) -> bytes:
    """Exactly ``{"v":1,"state":"offline","session":N}``: what the broker sends if we vanish."""
    return _encoder.encode({"v": 1, "state": "offline", "session": session})


def offline(session: int, ts: float) -> bytes:
    """The explicit offline of a clean shutdown; ``ts`` orders it after our last online."""
    return _encoder.encode({"v": 1, "state": "offline", "session": session, "ts": ts})
