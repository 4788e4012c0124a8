"""Fixed tallies of the floor state: a count per rating, a count per loss reason.

Each is a struct with one field per name, not a dict keyed by the names: 48 bytes
where the dict took 192. Two hours into the day a branch holds ~24 rating tallies
(counters, tellers, today's tellers) and 8 loss tallies (services, today's
services): 4.5 KiB a branch less (bench.state_memory). A struct encodes as the map
``{name: count}`` the dict did, its fields in the same order, so a snapshot holds
the same bytes either way and older snapshots restore unchanged; a name missing from
a map (a tampered snapshot) reads as 0, and nothing can ever lack one.

A leaf module, like :mod:`collector.floor.histogram`: the branch, figure and notice
states all use it.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from branchwatch.contract.ids import RATINGS

LostReason = Literal["no_show", "walkout", "closed"]
LOST_REASONS: Final[tuple[LostReason, ...]] = ("no_show", "walkout", "closed")


class _Tally(msgspec.Struct, gc=False):
    """A count per name (the fields, in order); read like a mapping of them."""

    def __getitem__(self, name: str) -> int:
        if name not in self.__struct_fields__:
            raise KeyError(name)
        count: int = getattr(self, name)
        return count

    def add(self, name: str, count: int = 1) -> None:
        setattr(self, name, self[name] + count)

    def counts(self) -> tuple[int, ...]:
        """Every count, in the fields' order."""
        return msgspec.structs.astuple(self)

    def total(self) -> int:
        return sum(self.counts())

    def as_dict(self) -> dict[str, int]:
        """A new ``{name: count}`` of every name, in order (views, JSON)."""
        return dict(zip(self.__struct_fields__, self.counts(), strict=True))


class Ratings(_Tally, gc=False):
    """The evaluator pad's ratings, by rating (:data:`branchwatch.contract.ids.RATINGS`)."""

    very_satisfied: int = 0
    satisfied: int = 0
    neutral: int = 0
    unsatisfied: int = 0


class Losses(_Tally, gc=False):
    """Tickets lost, by reason (:data:`LOST_REASONS`)."""

    no_show: int = 0
    walkout: int = 0
    closed: int = 0


if Ratings.__struct_fields__ != RATINGS or Losses.__struct_fields__ != LOST_REASONS:
    raise RuntimeError("collector/floor/tallies: the fields must be the names, in order")
