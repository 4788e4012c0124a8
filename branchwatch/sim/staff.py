"""Posts 1-7 and the intercom: staff checking in and out, covering, calling, answering.

The lobby manager holds post 1 and the deputy post 2 (the profile's
``lobby_staff`` says who holds which post); when one steps away, the lobby
director (post 3), an idle low-counter teller (post 4, pausing the counter) or
the relationship manager (post 7) may cover, in that order, or nobody does and
the post stays empty for a few minutes. A thin-staffed branch has nobody at
posts 3 or 7 to begin with. Answering the collector's floor notices is in
:mod:`branchwatch.sim.notices`.
"""

from __future__ import annotations

from branchwatch.contract.events import IntercomAck, IntercomCall, PositionStaffed, PositionVacated
from branchwatch.contract.ids import IntercomReason
from branchwatch.sim.base import (
    COVER,
    INTERCOM_DEVICE,
    OPEN,
    PAUSED,
    SimBase,
    SimCounter,
)
from branchwatch.sim.profile import (
    COUNTER_POST,
    HOUR,
    MINUTE,
    POST_FORMS,
    POST_GREETER,
    POST_LOW,
    POST_SELF_SERVICE,
    POST_WEALTH,
)


class FloorStaff(SimBase):
    """The people on the floor of one branch and what they say over the intercom."""

    def _staff(self, post: int, who: str) -> None:
        self._posts.setdefault(post, []).append(who)
        self._where[who] = post
        self._emit(PositionStaffed, INTERCOM_DEVICE, position=post, staff=who)

    def _vacate(self, post: int, who: str) -> None:
        staff = self._posts.get(post, [])
        if who in staff:
            staff.remove(who)
        if self._where.get(who) == post:
            del self._where[who]
        self._emit(PositionVacated, INTERCOM_DEVICE, position=post, staff=who)

    def _intercom(self, source: int, target: int | None, reason: IntercomReason) -> None:
        self._emit(
            IntercomCall, INTERCOM_DEVICE, from_position=source, reason=reason, to_position=target
        )
        rng = self._rng
        if rng.random() < 0.92:
            self._later(rng.uniform(4, 25), self._ack, target, None)

    def _ack(self, position: int | None, notice: str | None) -> None:
        if position is None:  # a call to all posts: whoever is free answers
            position = next(
                (p for p in (POST_FORMS, POST_SELF_SERVICE, POST_WEALTH) if self._posts.get(p)),
                None,
            )
        if position is not None and self._posts.get(position):
            self._emit(IntercomAck, INTERCOM_DEVICE, position=position, notice=notice)

    def _assist_call(self) -> None:
        tellers = [p for p in (POST_LOW, COUNTER_POST["high"]) if self._posts.get(p)]
        if tellers:
            self._intercom(self._rng.choice(tellers), POST_SELF_SERVICE, "assist")

    def _crowd_check(self) -> None:
        if self._waiting >= 12 and self._posts.get(POST_GREETER):
            self._intercom(POST_GREETER, None, "backup")

    def _leave_post(self, post: int, owner: str, long_break: bool) -> None:
        """``owner`` leaves ``post``; someone from 3, 4 or 7 may cover it, or nobody."""
        if self._where.get(owner) != post or post in self._covering:
            return
        rng = self._rng
        cover = None
        if long_break or rng.random() < self.profile.greeter_backfill:
            cover = self._find_cover()
        if long_break and cover is None:
            if self.now - self._origin < 15 * HOUR:  # nobody to cover yet: try again later
                self._later(10 * MINUTE, self._leave_post, post, owner, True)
            return
        if cover is not None:
            self._intercom(post, cover[0], "backup")
        self._vacate(post, owner)
        if long_break:
            away = self.profile.lunch_minutes * MINUTE
        elif cover is not None:
            away = rng.uniform(4, 12) * MINUTE
        else:
            away = rng.uniform(1.5, 6) * MINUTE
        if cover is not None:
            self._later(rng.uniform(15, 60), self._cover, post, *cover)
        self._later(away, self._return_to_post, post, owner)

    def _step_away(self, post: int, owner: str, away: float) -> None:
        """``owner`` leaves ``post`` for ``away`` seconds and nobody is asked to cover."""
        if self._where.get(owner) != post or post in self._covering:
            return
        self._vacate(post, owner)
        self._later(away, self._return_to_post, post, owner)

    def _find_cover(self) -> tuple[int, str, SimCounter | None] | None:
        rng = self._rng
        holders = self.profile.lobby_staff
        director, adviser = holders.get(POST_FORMS), holders.get(POST_WEALTH)
        if (
            director is not None
            and director in self._posts.get(POST_FORMS, ())
            and rng.random() < 0.55
        ):
            return POST_FORMS, director, None
        idle_low = [
            c
            for c in self._counters
            if c.kind == "low" and c.state == OPEN and not c.busy and c.pause is None
        ]
        if idle_low and rng.random() < 0.9:
            return POST_LOW, idle_low[0].teller, idle_low[0]
        if (
            adviser is not None
            and adviser in self._posts.get(POST_WEALTH, ())
            and rng.random() < 0.7
        ):
            return POST_WEALTH, adviser, None
        return None

    def _cover(self, post: int, home: int, who: str, counter: SimCounter | None) -> None:
        if self._where.get(who) != home or self._posts.get(post) or post in self._covering:
            return
        if counter is not None:
            if counter.state != OPEN or counter.busy or counter.closing or counter.pause:
                return  # called a customer meanwhile: the post stays empty
            counter.pause = (COVER, None)
            self._pause(counter)  # vacates the teller's post 4
        else:
            self._vacate(home, who)
        self._staff(post, who)
        self._covering[post] = (who, home, counter)

    def _return_to_post(self, post: int, owner: str) -> None:
        if owner in self._where:
            return
        self._staff(post, owner)
        cover = self._covering.pop(post, None)
        if cover is None:
            return
        who, home, counter = cover
        self._vacate(post, who)
        if counter is None:
            self._return_to_post(home, who)  # relieving whoever covers their own post
        elif counter.state == PAUSED and counter.paused_for == COVER:
            self._open_counter(counter)
