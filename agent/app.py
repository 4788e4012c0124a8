"""``branchwatch agent run``: spool, devices and publisher in one event loop.

SIGTERM/SIGINT: the publisher says offline (retained) and disconnects, the
devices are cancelled, the spool is closed; exit 0 within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from typing import Any, Final

from agent.config import AgentConfig
from agent.core import AgentCore
from agent.devices.base import DeviceKind
from agent.devices.registry import DEVICE_KINDS
from agent.publisher import Publisher
from agent.spool import Spool, SpoolError, SpoolWriteError

log = logging.getLogger(__name__)

PRUNE_INTERVAL: Final = 300.0
SHUTDOWN_PUBLISH_GRACE: Final = 3.0


def open_spool(config: AgentConfig) -> Spool:
    spool = config.spool
    return Spool(
        spool.path,
        max_events=spool.max_events,
        max_bytes=spool.max_bytes,
        retention_seconds=spool.retention_hours * 3600.0,
    )


async def run_agent(config: AgentConfig, kinds: Mapping[str, DeviceKind] = DEVICE_KINDS) -> None:
    with open_spool(config) as spool:
        if spool.fresh:
            log.info(
                "spool %s is new: seqs start at %d, sessions at %d (above any older spool's)",
                spool.path, spool.next_seq, spool.session + 1,
            )  # fmt: skip
        core = AgentCore(config.devices, spool, kinds)
        core.build_devices()
        stop = asyncio.Event()
        publisher = Publisher(config, core, stop)  # reads secrets: a ConfigError stops here
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "agent %s/%s/%s: %d devices, spool %s (next seq %d, %d unsent)",
            config.region, config.branch, config.agent, len(core.devices),
            spool.path, spool.next_seq, spool.depth,
        )  # fmt: skip
        background: list[asyncio.Task[Any]] = [
            asyncio.create_task(core.run_devices(), name="devices"),
            asyncio.create_task(_prune(core), name="prune"),
        ]
        publishing = asyncio.create_task(publisher.run(), name="publisher")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        failing = asyncio.create_task(core.failed.wait(), name="failed")
        background += [stopping, failing]
        try:
            await asyncio.wait([publishing, stopping, failing], return_when=asyncio.FIRST_COMPLETED)
            if publishing.done():
                publishing.result()  # a fatal error (e.g. the spool's disk): raise it
            if core.failure is not None:
                raise core.failure
            # Stopping: give the publisher a moment to say offline, then cut it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(publishing, SHUTDOWN_PUBLISH_GRACE)
        finally:
            core.stopping = True
            for task in [*background, publishing]:
                task.cancel()
            await asyncio.gather(*background, publishing, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        log.info("agent stopped (last seq %d, %d unsent)", spool.last_seq, spool.depth)


async def _prune(core: AgentCore) -> None:
    while True:
        try:
            removed = core.spool.prune()
        except SpoolWriteError as exc:  # a full disk: try again next time
            log.warning("spool prune postponed: %s", exc)
        except SpoolError as exc:
            # Corrupt: without this the task would end unseen and the spool stop pruning.
            core.fail(exc, "prune")
            return
        else:
            if removed:
                log.info("spool: %d sent events past the retention window removed", removed)
        await asyncio.sleep(PRUNE_INTERVAL)
