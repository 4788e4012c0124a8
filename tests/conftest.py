from __future__ import annotations

from collections.abc import Iterator

import pytest

from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker
from tests.support import require_binary


@pytest.fixture
def mosquitto() -> Iterator[EmbeddedBroker]:
    """A real Mosquitto of our own on a free loopback port (never the system one on 1883)."""
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    with EmbeddedBroker("mosquitto") as broker:
        yield broker
