"""The edge agent's online status: its devices' links and its spool, as the contract says.

The payloads themselves (and the will, the offline of a clean stop) are built by
:mod:`branchwatch.agentlink`, which the simulator shares.
"""

from __future__ import annotations

from agent.core import AgentCore
from branchwatch.agentlink import online_status
from branchwatch.contract import SpoolStatus


def online(core: AgentCore, session: int) -> bytes:
    spool = core.spool
    return online_status(
        session,
        core.clock(),
        core.device_status(),
        SpoolStatus(
            depth=spool.depth,
            oldest_ts=spool.oldest_unsent_ts(),
            dropped=spool.dropped,
            refused=spool.refused,
        ),
    )
