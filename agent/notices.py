"""The floor notices this agent delivered lately, so a notice id reaches the devices once.

Both collectors of an HA pair run the floor notices and send every notice, under the
same id (the collector names a notice after the branch's events, which both see). The
first copy to arrive is offered to the devices; a copy of an id already delivered is
answered without offering it again. A copy that comes while the first is still being
written waits for it: the intercom shows a notice once, not twice a few ms apart. When
no device took the first copy, the next copy gets its own try.

Bounded: the newest :data:`KEEP_IDS` ids, none older than :data:`KEEP_SECONDS` (far longer
than the few ms, or the seconds of a broker hiccup, between two twins' copies).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, NamedTuple

from branchwatch.contract.messages import NOTICE_IDS_KEPT

KEEP_IDS: Final = NOTICE_IDS_KEPT
KEEP_SECONDS: Final = 3600.0


class Claim(NamedTuple):
    """One copy's right to offer a notice to the devices."""

    notice_id: str
    started: float  # monotonic
    taken: asyncio.Future[int]  # how many devices took it, once known


class DeliveredNotices:
    def __init__(
        self,
        keep_ids: int = KEEP_IDS,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keep_ids = keep_ids
        self._keep_seconds = keep_seconds
        self._clock = clock
        self._by_id: OrderedDict[str, Claim] = OrderedDict()
        self.repeats = 0  # copies answered without offering them again

    def __len__(self) -> int:
        return len(self._by_id)

    async def claim(self, notice_id: str) -> Claim | None:
        """This copy's claim to deliver ``notice_id`` (pass it to :meth:`done`), or None:
        delivered already."""
        while True:
            self._forget_old()
            earlier = self._by_id.get(notice_id)
            if earlier is None:
                claim = Claim(notice_id, self._clock(), asyncio.get_running_loop().create_future())
                self._by_id[notice_id] = claim
                self._forget_old()
                return claim
            # Shielded: a copy cancelled while it waits must not cancel the first delivery.
            if await asyncio.shield(earlier.taken):
                self.repeats += 1
                return None
            # Nobody took the first copy: done() forgot it, so this one claims it now.

    def done(self, claim: Claim, taken: int) -> None:
        """The claimed delivery ended: ``taken`` devices took the notice."""
        if claim.taken.done():
            return
        if not taken and self._by_id.get(claim.notice_id) is claim:
            del self._by_id[claim.notice_id]  # a later copy may find a device that takes it
        claim.taken.set_result(taken)

    def _forget_old(self) -> None:
        oldest = self._clock() - self._keep_seconds
        entries = self._by_id
        while entries:
            notice_id, claim = next(iter(entries.items()))
            if len(entries) <= self._keep_ids and claim.started >= oldest:
                break
            del entries[notice_id]
