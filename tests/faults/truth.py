"""What the floor should show, computed without the collector, and how far the collector is off.

:class:`Truth` is a deliberately small model of the events the rig's devices
make: tickets issued and served per service (a ticket counts as served when its
service starts, once its issue is known), evaluations requested and rated per
counter, and who is checked in at each post. It reads the same events from two
sources: what the devices sent (:mod:`tests.faults.load`) and what the agents
recorded in their spools, in seq order. The collector's ``/metrics`` must equal
the truth of what the agents recorded; the devices' own tally shows what was
lost on the wire before an agent could record it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.support import Samples

# The counter families the truth predicts, each one increment per event of one type.
COUNTED: Final = (
    "branchwatch_tickets_issued_total",
    "branchwatch_tickets_served_total",
    "branchwatch_evaluations_requested_total",
    "branchwatch_evaluations_total",
)
STAFFED: Final = "branchwatch_position_staffed"
MAX_SEQ: Final = 2**63 - 1
COUNTABLE_TYPES: Final = frozenset(
    ("ticket.issued", "service.started", "evaluation.requested", "evaluation.submitted")
)


@dataclass
class Truth:
    """One branch's floor, as its devices' events say."""

    region: str
    branch: str
    issued: Counter[str] = field(default_factory=Counter)  # per service
    served: Counter[str] = field(default_factory=Counter)
    requested: Counter[str] = field(default_factory=Counter)  # per counter
    rated: Counter[tuple[str, str]] = field(default_factory=Counter)  # (counter, rating)
    staff: dict[int, set[str]] = field(default_factory=dict)
    _services: dict[str, str] = field(default_factory=dict)  # ticket -> service, once issued

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event["type"]
        if kind == "ticket.issued":
            self.issued[event["service"]] += 1
            self._services[event["ticket"]] = event["service"]
        elif kind == "ticket.transferred" and event["ticket"] in self._services:
            self._services[event["ticket"]] = event["service"]  # served under its new service
        elif kind == "service.started" and event["ticket"] in self._services:
            self.served[self._services[event["ticket"]]] += 1
        elif kind == "evaluation.requested":
            self.requested[event["counter"]] += 1
        elif kind == "evaluation.submitted":
            self.rated[event["counter"], event["rating"]] += 1
        elif kind == "position.staffed":
            self.staff.setdefault(event["position"], set()).add(event["staff"])
        elif kind == "position.vacated":
            here = self.staff.setdefault(event["position"], set())
            if event.get("staff") is None:
                here.clear()
            else:
                here.discard(event["staff"])

    def extend(self, events: Iterable[Mapping[str, Any]]) -> Truth:
        for event in events:
            self.add(event)
        return self

    @property
    def countable(self) -> int:
        """Events that each move one counter the collector exports."""
        return sum(self.issued.values()) + sum(self.served.values()) + sum(
            self.requested.values()
        ) + sum(self.rated.values())  # fmt: skip

    def samples(self) -> Samples:
        """The truth as /metrics samples (only the families it predicts)."""
        where = {"region": self.region, "branch": self.branch}
        out: Samples = {}

        def put(name: str, value: float, **labels: str) -> None:
            out[(name, tuple(sorted({**where, **labels}.items())))] = float(value)

        for service, n in self.issued.items():
            put(COUNTED[0], n, service=service)
        for service, n in self.served.items():
            put(COUNTED[1], n, service=service)
        for counter, n in self.requested.items():
            put(COUNTED[2], n, counter=counter)
        for (counter, rating), n in self.rated.items():
            put(COUNTED[3], n, counter=counter, rating=rating)
        for position, staff in self.staff.items():
            put(STAFFED, len(staff), position=str(position))
        return out


def spool_rows(spool: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """A read-only query on an agent's spool, beside the running agent; [] while it has none."""
    if not spool.exists():
        return []
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # created, not yet initialised
            return []
        raise
    finally:
        db.close()


def spooled_events(spool: Path, up_to: int | None = None) -> list[dict[str, Any]]:
    """Every event an agent's spool holds (up to seq ``up_to``), in seq order."""
    rows = spool_rows(
        spool,
        "SELECT payload FROM events WHERE seq <= ? ORDER BY seq",
        MAX_SEQ if up_to is None else up_to,
    )
    return [json.loads(payload) for (payload,) in rows]


def copy_spool(spool: Path, to: Path) -> Path:
    """A standalone copy of a spool (no write-ahead log beside it), read as any spool."""
    source = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
    copy = sqlite3.connect(to)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        source.close()
    return to


def unsent(spool: Path) -> int:
    """Events the agent has not yet had acknowledged by the broker."""
    rows = spool_rows(spool, "SELECT count(*) FROM events WHERE sent = 0")
    return int(rows[0][0]) if rows else 0


@dataclass
class Difference:
    """The collector against a truth, over the truth's families and the branch's samples."""

    expected: int = 0  # increments the truth predicts
    counted: int = 0  # increments the collector shows for them
    lost: int = 0  # expected but not counted
    duplicated: int = 0  # counted more often than expected
    wrong_posts: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and not self.wrong_posts

    def since(self, base: Difference) -> Difference:
        """What changed after ``base`` (posts are state: as they are now)."""
        return Difference(
            expected=self.expected - base.expected,
            counted=self.counted - base.counted,
            lost=self.lost - base.lost,
            duplicated=self.duplicated - base.duplicated,
            wrong_posts=self.wrong_posts,
        )


def compare(truths: Iterable[Truth], got: Samples) -> Difference:
    """How the collector's samples differ from what each branch's truth predicts."""
    diff = Difference()
    for truth in truths:
        want = truth.samples()
        mine = {
            key: value
            for key, value in got.items()
            if key[0] in (*COUNTED, STAFFED)
            and ("region", truth.region) in key[1]
            and ("branch", truth.branch) in key[1]
        }
        for key in sorted(set(want) | set(mine)):
            expected, counted = want.get(key, 0.0), mine.get(key, 0.0)
            if key[0] == STAFFED:
                if expected != counted:
                    labels = dict(key[1])
                    diff.wrong_posts.append(
                        f"{truth.branch} post {labels['position']}: {counted:g} staffed, "
                        f"{expected:g} checked in"
                    )
                continue
            diff.expected += int(expected)
            diff.counted += int(counted)
            diff.lost += int(max(0.0, expected - counted))
            diff.duplicated += int(max(0.0, counted - expected))
    return diff
