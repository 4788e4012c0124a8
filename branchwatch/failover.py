"""Which broker of a list to try next: round robin, backing off after a full round.

The agent, the collector and the simulator take a list of broker URLs (the
nodes of a cluster, or independent brokers). A client starts on the first,
moves to the next when a connection fails or is lost, and waits (its
:class:`branchwatch.retry.Backoff`) only once every broker has failed since
the last wait: a dead node costs one failed connect, not a backoff delay.
"""

from __future__ import annotations

from collections.abc import Sequence

from branchwatch.config import BrokerAddress, parse_broker_url


class BrokerRotation:
    """The broker to use now, and whether moving on needs a wait first."""

    __slots__ = ("_tried", "addresses", "index", "urls")

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("a broker rotation needs at least one URL")
        self.urls = tuple(urls)
        self.addresses = tuple(parse_broker_url(url) for url in self.urls)
        self.index = 0
        self._tried: set[int] = set()

    @property
    def url(self) -> str:
        return self.urls[self.index]

    @property
    def address(self) -> BrokerAddress:
        return self.addresses[self.index]

    def describe(self) -> str:
        """``mqtt://b:1883`` alone, or ``mqtt://b:1883 (broker 2 of 3)`` in a list."""
        if len(self.urls) == 1:
            return self.url
        return f"{self.url} (broker {self.index + 1} of {len(self.urls)})"

    def connected(self) -> None:
        """The current broker took us: losing it starts a new round at the next one."""
        self._tried = set()

    def failed(self) -> bool:
        """Move to the next broker; True when all were tried since the last wait (wait now)."""
        self._tried.add(self.index)
        self.index = (self.index + 1) % len(self.urls)
        if self.index in self._tried:
            self._tried = set()
            return True
        return False
