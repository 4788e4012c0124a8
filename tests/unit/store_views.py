"""What users see of a store, for tests that compare two stores (a restored and a fed one)."""

from __future__ import annotations

import msgspec

from collector.screen import LobbyScreen
from collector.store import Store


def observable(
    store: Store, screen: LobbyScreen, now: float, region: str, branches: tuple[str, ...]
) -> tuple[object, ...]:
    """Metrics, the API's summaries and details, notices, the lobby screen and the replays
    the store would ask for, of ``branches`` of ``region`` at ``now``."""
    details = [store.branch_detail(region, b, now=now) for b in branches]
    screens = [screen.view(store.branch_state(region, b), region, b, "en", now) for b in branches]
    notices = [store.notices_of(region, b) for b in branches]
    return (
        store.render(),
        msgspec.json.encode(store.branch_summaries(now=now)),
        msgspec.json.encode(details),
        msgspec.json.encode(screens),
        msgspec.json.encode(notices),
        store.replay_requests(),
    )
