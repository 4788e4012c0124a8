"""The ``[notices]`` table of the collector config: when and whom the branch is told.

All keys are optional; numbers are seconds (fractions allowed) except
``waiting_per_counter`` (customers waiting per open counter).
"""

from __future__ import annotations

import math

import msgspec

from collector.errors import CollectorConfigError
from collector.floor.config import check_post_list
from collector.notices.state import KINDS, NoticeKind
from collector.notices.texts import Language, check_template


class NoticeTexts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Template overrides per kind (empty: the language's built-in text).

    Fields: post_empty {post} {post_name} {empty_for}; unsatisfied {counter}
    {teller} {ticket} {waited}; queue_long {service} {waiting} {oldest} {counters}.
    """

    post_empty: str = ""
    unsatisfied: str = ""
    queue_long: str = ""

    def overrides(self) -> dict[NoticeKind, str]:
        return {kind: text for kind in KINDS if (text := getattr(self, kind))}


class NoticesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    # A required post empty this long while the branch is open: the first backfill notice.
    post_empty_seconds: float = 60.0
    # A notice not acknowledged within this: the next step of the chain.
    ack_timeout_seconds: float = 60.0
    # Who hears of an unsatisfied rating or a long queue: the first staffed of these.
    follow_up_positions: tuple[int, ...] = (3, 2, 1)
    # After the backfill order: these posts (branch head, flexible teller); empty: all-call.
    escalation_positions: tuple[int, ...] = ()
    # "Open a counter" when a service has more waiting per open counter of its kind.
    waiting_per_counter: float = 8.0
    # At most one "open a counter" notice per service this often.
    repeat_seconds: float = 600.0
    language: Language = "en"
    texts: NoticeTexts = NoticeTexts()

    def validate(self, floor_positions: set[int] | frozenset[int]) -> None:
        """Raise :class:`CollectorConfigError` naming the first setting that cannot be used.

        ``floor_positions`` are the posts configured in ``[floor]``.
        """
        for setting in (
            "post_empty_seconds",
            "ack_timeout_seconds",
            "waiting_per_counter",
            "repeat_seconds",
        ):
            value = getattr(self, setting)
            if not (math.isfinite(value) and value > 0):
                raise CollectorConfigError(
                    f"notices.{setting} must be a positive number, got {value!r}"
                )
        if not self.follow_up_positions:
            raise CollectorConfigError(
                "notices.follow_up_positions must name at least one post "
                "(set notices.enabled = false to turn notices off)"
            )
        for setting in ("follow_up_positions", "escalation_positions"):
            refs: tuple[int, ...] = getattr(self, setting)
            check_post_list(f"notices.{setting}", refs, floor_positions, CollectorConfigError)
        for kind, template in self.texts.overrides().items():
            problem = check_template(kind, template)
            if problem is not None:
                raise CollectorConfigError(f"notices.texts.{kind} {problem}")
