"""Identifier and value types of wire contract v1 (docs/contract.md).

Each is an ``Annotated`` type, so msgspec enforces the constraint while it
decodes, at C speed, and the same names document the contract.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from msgspec import Meta

# ``\Z``, not ``$``: msgspec and ``re.match`` use Python regex semantics, where ``$``
# also matches before a final newline, so ``"queue-1\n"`` would pass as an id.
SITE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}\Z"
LOCAL_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z"
TOKEN_PATTERN: Final = r"^[a-z0-9_]{1,24}\Z"  # noqa: S105 - a regex, not a secret

SITE_ID_RE: Final = re.compile(SITE_ID_PATTERN)
TOKEN_RE: Final = re.compile(TOKEN_PATTERN)

# region, branch, agent: they appear in topics, so lower case only.
SiteId = Annotated[str, Meta(pattern=SITE_ID_PATTERN)]
# device, counter, ticket, teller, staff, notice ids.
LocalId = Annotated[str, Meta(pattern=LOCAL_ID_PATTERN)]
# service names, fault names, device kinds.
Token = Annotated[str, Meta(pattern=TOKEN_PATTERN)]
Position = Annotated[int, Meta(ge=1, le=99)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Session = Annotated[int, Meta(ge=0, le=2**63 - 1)]
# Unix seconds; bounded so a garbage value cannot poison durations.
Timestamp = Annotated[float, Meta(ge=0.0, le=4_102_444_800.0)]
ShortText = Annotated[str, Meta(max_length=200)]

Version = Literal[1]
CounterKind = Literal["high", "low", "vip"]
Rating = Literal["very_satisfied", "satisfied", "neutral", "unsatisfied"]
IntercomReason = Literal["handoff", "vip", "assist", "backup"]

RATINGS: Final[tuple[Rating, ...]] = ("very_satisfied", "satisfied", "neutral", "unsatisfied")
COUNTER_STATES: Final = ("open", "paused", "closed")

MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_BATCH_EVENTS: Final = 500


def is_site_id(value: str) -> bool:
    """True when ``value`` may be a region, branch or agent id."""
    return SITE_ID_RE.match(value) is not None


def is_token(value: str) -> bool:
    """True when ``value`` may be a service, fault, device kind or bad-frame reason."""
    return TOKEN_RE.match(value) is not None
