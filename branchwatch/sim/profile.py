"""The numbers a simulated branch day is drawn from, in one place.

Times are simulated seconds or hours of the day; rates are per simulated hour.
Defaults are calibrated so a day shows every path of the domain (see
docs/architecture.md for the floor): peaks with queues, lunch pauses, a few
walkouts and no-shows, transfers, an empty greeter post now and then, printer
faults, and a satisfaction near the bank's 90 %.

A *scenario* gives each simulated branch its profile: ``normal`` is the
default day for every branch; ``thin`` staffs the lobby as the bank's own
figures say branches are staffed (fewer lobby managers, some branches with
none); ``demo`` cycles through three branches whose trouble starts within
minutes of the simulation's start (see :data:`SCENARIOS`), so that a short
demo shows what the product is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final

from branchwatch.contract.ids import CounterKind, Rating

MINUTE: Final = 60.0
HOUR: Final = 3600.0
DAY: Final = 24 * HOUR

# Posts of the service standard (the lobby positions).
POST_GREETER: Final = 1
POST_SELF_SERVICE: Final = 2
POST_FORMS: Final = 3
POST_LOW: Final = 4
POST_HIGH: Final = 5
POST_VIP: Final = 6
POST_WEALTH: Final = 7

# Who holds a lobby post (the staff ids of its check-ins).
MANAGER: Final = "mgr"  # lobby manager, post 1
DEPUTY: Final = "deputy"  # deputy lobby manager, post 2
DIRECTOR: Final = "director"  # lobby director, post 3
ADVISER: Final = "rm"  # relationship manager, post 7
GREETER_STAND_IN: Final = "flex-1"  # a teller or flexible staff at post 1 (no lobby manager)
FLOOR_STAND_IN: Final = "flex-2"  # flexible staff at post 2
LOBBY_MANAGERS: Final = frozenset({MANAGER, DEPUTY, DIRECTOR})
DEFAULT_LOBBY_STAFF: Final = {
    POST_GREETER: MANAGER,
    POST_SELF_SERVICE: DEPUTY,
    POST_FORMS: DIRECTOR,
    POST_WEALTH: ADVISER,
}

COUNTER_POST: Final[dict[CounterKind, int]] = {"high": POST_HIGH, "low": POST_LOW, "vip": POST_VIP}
# The post that serves a service: where a transfer is handed off to.
SERVICE_POST: Final[dict[str, int]] = {
    "cash": POST_HIGH,
    "non_cash": POST_LOW,
    "corporate": POST_LOW,
    "vip": POST_VIP,
}
# Which queues a counter kind calls from: tiers in priority order, the oldest
# ticket within a tier first (a VIP counter takes cash customers when idle).
COUNTER_TIERS: Final[dict[CounterKind, tuple[tuple[str, ...], ...]]] = {
    "high": (("cash",),),
    "low": (("non_cash", "corporate"),),
    "vip": (("vip",), ("cash",)),
}
TICKET_LETTER: Final[dict[str, str]] = {"cash": "A", "non_cash": "B", "vip": "V", "corporate": "C"}
RATINGS_BY_WAIT: Final[tuple[tuple[float, tuple[float, float, float, float]], ...]] = (
    # (wait up to seconds, weights of very_satisfied, satisfied, neutral, unsatisfied)
    (10 * MINUTE, (0.66, 0.27, 0.05, 0.02)),
    (20 * MINUTE, (0.50, 0.32, 0.12, 0.06)),
    (float("inf"), (0.30, 0.35, 0.20, 0.15)),
)
RATING_NAMES: Final[tuple[Rating, ...]] = ("very_satisfied", "satisfied", "neutral", "unsatisfied")


@dataclass(frozen=True)
class Incidents:
    """Trouble scripted for the first opening after the simulation starts.

    Offsets count simulated seconds from that opening; ``None`` (the default)
    scripts nothing, and the day is drawn from the seed alone.
    """

    # (after, away): the lobby manager leaves post 1 and nobody covers it.
    greeter_away: tuple[float, float] | None = None
    # (within, customers, service): a rush of walk-ins in the first minutes.
    rush: tuple[float, int, str] | None = None
    # (after, lasting): the ticket printer runs out of paper (low, then out).
    paper_out: tuple[float, float] | None = None


@dataclass(frozen=True)
class NoticeResponse:
    """How the staff of a branch answer a floor notice on their intercom.

    Simulated seconds. Most staff acknowledge within ``ack_seconds`` (a
    triangular draw: low, mode, high); a ``busy_share`` finish what they are
    doing first (``busy_seconds``); a ``never_share`` never acknowledge (out of
    earshot, on the phone). Whoever acknowledges a post-empty notice leaves
    their post and walks for ``walk_seconds`` before checking in at the empty
    one; after a long-queue notice a flexible teller opens a counter with the
    chance ``open_counter_share``.
    """

    ack_seconds: tuple[float, float, float] = (5.0, 10.0, 30.0)
    busy_share: float = 0.1
    busy_seconds: tuple[float, float] = (30.0, 120.0)
    never_share: float = 0.07
    # Across a branch lobby (10-30 m) at walking pace.
    walk_seconds: tuple[float, float] = (5.0, 25.0)
    open_counter_share: float = 0.5


@dataclass(frozen=True)
class Calendar:
    """How the date moves a branch's arrivals: weekday factors, busier month starts.

    ``weekday`` multiplies the day's arrival rate, Monday first; the first
    ``month_start_days`` business days (Monday to Friday) of a month are
    ``month_start`` times busier again (salaries, pensions, bills).
    """

    weekday: tuple[float, float, float, float, float, float, float] = (
        1.2,
        1.05,
        1.0,
        1.0,
        1.1,
        0.8,
        0.7,
    )
    month_start_days: int = 3
    month_start: float = 1.25


@dataclass(frozen=True)
class SelfService:
    """Cash customers who use the self-service machines instead of taking a ticket.

    The share is ``base`` plus ``per_waiting`` for every cash customer waiting
    per open cash counter when they arrive, at most ``most``.
    """

    base: float = 0.08
    per_waiting: float = 0.05
    most: float = 0.5


@dataclass(frozen=True)
class QueueCounters:
    """Flexible counters opened for a queue, not on a schedule.

    Every ``check_minutes`` a flexible teller looks at the queue their
    counter serves: above ``open_above`` customers waiting per open counter
    of that kind they walk over (``walk_minutes``) and open it; once nobody
    is waiting for it, they close it again.
    """

    open_above: float = 4.0
    check_minutes: float = 2.0
    walk_minutes: tuple[float, float] = (1.0, 4.0)


@dataclass(frozen=True)
class Tellers:
    """Tellers who rotate between counters, each with their own way with customers.

    ``relief`` tellers more than counters: a counter reopened after a pause,
    or opened, takes whichever teller is free. ``tendency`` bounds a
    teller's factor on the neutral and unsatisfied ratings (below 1: better
    rated than the branch's usual, above: worse), drawn once per teller.
    """

    relief: int = 2
    tendency: tuple[float, float] = (0.3, 2.4)


@dataclass(frozen=True)
class Profile:
    # What this branch shows, for a person watching it (the demo's banner).
    story: str = "a normal day"
    open_hour: float = 9.0
    close_hour: float = 17.0
    # After close the counters still call waiting tickets this long, then close.
    closeout: float = 2 * MINUTE
    # Simulated gap between one day's close and the next day's opening.
    night: float = 5 * MINUTE

    # Arrival rate multiplier over the day: late-morning and lunch peaks.
    arrival_curve: tuple[tuple[float, float], ...] = (
        (9.0, 0.35),
        (10.0, 0.75),
        (11.0, 1.00),
        (11.75, 0.80),
        (12.5, 1.00),
        (13.25, 0.95),
        (14.0, 0.65),
        (15.0, 0.55),
        (16.0, 0.65),
        (16.5, 0.85),  # the rush before closing: some are still waiting at close
        (17.0, 0.95),
    )
    peak_arrivals_per_hour: tuple[float, float] = (40.0, 52.0)
    service_mix: dict[str, float] = field(
        default_factory=lambda: {"cash": 0.63, "non_cash": 0.25, "vip": 0.06, "corporate": 0.06}
    )
    # (shortest, longest) service time per service, simulated seconds.
    service_time: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "cash": (3 * MINUTE, 5 * MINUTE),
            "non_cash": (10 * MINUTE, 15 * MINUTE),
            "vip": (12 * MINUTE, 20 * MINUTE),
            "corporate": (15 * MINUTE, 25 * MINUTE),
        }
    )
    # Counters per branch: (fewest, most) always-on, plus flex counters for the peak.
    counters: dict[CounterKind, tuple[int, int]] = field(
        default_factory=lambda: {"high": (2, 2), "low": (3, 3), "vip": (1, 1)}
    )
    flex_counters: tuple[CounterKind, ...] = ("high", "low")
    flex_hours: tuple[float, float] = (10.5, 15.0)

    # Ticket paths.
    no_show: float = 0.03
    transfers: dict[str, tuple[str, float]] = field(
        default_factory=lambda: {"non_cash": ("cash", 0.07), "cash": ("non_cash", 0.02)}
    )
    patience_min: float = 12 * MINUTE
    patience_mean_extra: float = 30 * MINUTE

    # Evaluator pads.
    evaluation_request: float = 0.88
    evaluation_submit: float = 0.93
    evaluation_window: float = 10.0

    # Lobby posts held from opening, and by whom: the lobby manager (1), the deputy (2), the
    # lobby director (3) and the relationship manager (7). Posts 1 and 2 always have
    # someone; a thin branch lacks the others, or has no lobby manager at all.
    lobby_staff: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_LOBBY_STAFF))

    # Staff: breaks, lunches, greeter absences.
    break_probability: float = 0.7
    break_minutes: tuple[float, float] = (8.0, 15.0)
    lunch_window: tuple[float, float] = (11.5, 14.0)
    lunch_minutes: float = 30.0
    greeter_absences: tuple[int, int] = (2, 4)
    greeter_backfill: float = 0.5
    deputy_absences: tuple[int, int] = (1, 2)
    assist_calls: tuple[int, int] = (3, 6)
    # Floor notices from the collector (a branch that is sent none never draws from it).
    notices: NoticeResponse = field(default_factory=NoticeResponse)

    # Ticket printer faults per day.
    paper_low: float = 0.8
    paper_runs_out: float = 0.3
    paper_jams_per_day: float = 1.0

    incidents: Incidents = field(default_factory=Incidents)

    # Realism, off by default (a profile without them draws exactly as before): the date's
    # effect on arrivals, self-service machines, flexible counters opened for queues, tellers
    # rotating between counters, and a night that lasts until the next day's opening.
    calendar: Calendar | None = None
    self_service: SelfService | None = None
    queue_counters: QueueCounters | None = None
    tellers: Tellers | None = None
    real_nights: bool = False

    def __post_init__(self) -> None:
        missing = {POST_GREETER, POST_SELF_SERVICE} - set(self.lobby_staff)
        if missing:
            raise ValueError(f"lobby_staff must hold the required posts, missing {missing}")

    @property
    def lobby_managers(self) -> int:
        """How many of the lobby posts' holders are lobby managers."""
        return sum(1 for who in self.lobby_staff.values() if who in LOBBY_MANAGERS)

    def tiers(self, kind: CounterKind) -> tuple[tuple[str, ...], ...]:
        return tuple(
            tuple(s for s in tier if s in self.service_mix)
            for tier in COUNTER_TIERS.get(kind, ((),))
        )


DEFAULT_PROFILE: Final = Profile()

# The demo's branches, in turn: each shows one kind of trouble within minutes.
THIN_STAFFED: Final = replace(
    DEFAULT_PROFILE,
    story="thin-staffed, nobody at posts 3 and 7: the lobby manager leaves post 1 a minute "
    "in, for 30 min; the collector tells the next staffed post to cover it",
    lobby_staff={POST_GREETER: MANAGER, POST_SELF_SERVICE: DEPUTY},
    incidents=Incidents(greeter_away=(1 * MINUTE, 30 * MINUTE)),
)
BUSY: Final = replace(
    DEFAULT_PROFILE,
    story="busy: a rush of cash customers at one cash counter; the collector asks for "
    "another counter, the flexible teller starts only after 10:30: waits pass 20 min",
    peak_arrivals_per_hour=(50.0, 60.0),
    service_mix={"cash": 0.72, "non_cash": 0.22, "corporate": 0.06},
    counters={"high": (1, 1), "low": (2, 2)},
    flex_counters=("high",),
    flex_hours=(10.75, 15.0),
    patience_min=25 * MINUTE,  # a rush that stays: nobody gives up before the warning
    # Told the cash queue is too long, nobody can open a second cash counter before the
    # flexible teller's hours (from 10:30-11:00).
    notices=NoticeResponse(open_counter_share=0.0),
    incidents=Incidents(rush=(2 * MINUTE, 10, "cash")),
)
PRINTER_OUT: Final = replace(
    DEFAULT_PROFILE,
    story="the ticket printer runs out of paper five minutes in, for 30 min",
    incidents=Incidents(paper_out=(5 * MINUTE, 30 * MINUTE)),
)

# Lobby staffing as the bank reports it: 0.94-1.54 lobby managers per branch, 18 % of
# branches with none; lobby posts are held by whoever is free. Posts 1 and 2 always have
# someone at opening (a flexible member of staff where no lobby manager does it). What thins
# is who can backfill: the lobby director (post 3), the relationship manager (post 7), and in
# the smallest branches the low counters too, so that sometimes nobody in the backfill order
# is at their post. Breaks and absences from posts 1 and 2 are as frequent as in the default
# day.
TWO_LOBBY_MANAGERS: Final = replace(
    DEFAULT_PROFILE,
    story="two lobby managers (posts 1 and 3), flexible staff at post 2",
    lobby_staff={
        POST_GREETER: MANAGER,
        POST_SELF_SERVICE: FLOOR_STAND_IN,
        POST_FORMS: DIRECTOR,
        POST_WEALTH: ADVISER,
    },
)
ONE_LOBBY_MANAGER: Final = replace(
    DEFAULT_PROFILE,
    story="one lobby manager (post 1): nobody at post 3, backfill from post 4 or 7",
    lobby_staff={POST_GREETER: MANAGER, POST_SELF_SERVICE: FLOOR_STAND_IN, POST_WEALTH: ADVISER},
)
NO_LOBBY_MANAGER: Final = replace(
    DEFAULT_PROFILE,
    story="no lobby manager, a small branch: flexible staff at posts 1 and 2, nobody at 3 "
    "and 7, one low counter",
    lobby_staff={POST_GREETER: GREETER_STAND_IN, POST_SELF_SERVICE: FLOOR_STAND_IN},
    peak_arrivals_per_hour=(28.0, 36.0),
    counters={"high": (1, 2), "low": (1, 1), "vip": (1, 1)},
)
# 2 of 11 branches without a lobby manager (18 %), 5 with one, 4 with two: 1.18 per branch.
THIN_STAFFING: Final = (
    TWO_LOBBY_MANAGERS,
    ONE_LOBBY_MANAGER,
    NO_LOBBY_MANAGER,
    ONE_LOBBY_MANAGER,
    TWO_LOBBY_MANAGERS,
    ONE_LOBBY_MANAGER,
    TWO_LOBBY_MANAGERS,
    ONE_LOBBY_MANAGER,
    NO_LOBBY_MANAGER,
    ONE_LOBBY_MANAGER,
    TWO_LOBBY_MANAGERS,
)


# The realistic scenario: the date, self-service, queue-driven flexible counters and
# rotating tellers in every branch; two in five branches busy enough that waits pass the
# 15-minute target at the lunch peak and on month-start days, the rest ordinary or small.
def _realistic(base: Profile, story: str, open_above: float, **changes: Any) -> Profile:
    return replace(
        base,
        story=story,
        calendar=Calendar(),
        self_service=SelfService(),
        queue_counters=QueueCounters(open_above=open_above),
        tellers=Tellers(),
        **changes,
    )


REALISTIC_ORDINARY: Final = _realistic(
    DEFAULT_PROFILE,
    "an ordinary branch: self-service machines, a flexible teller for queues",
    open_above=4.0,
)
REALISTIC_BUSY: Final = _realistic(
    DEFAULT_PROFILE,
    "a busy city branch: waits pass 15 min at the lunch peak and at month start",
    open_above=6.0,
    arrival_curve=(
        (9.0, 0.45),
        (10.0, 0.80),
        (11.0, 0.95),
        (11.75, 1.00),
        (12.25, 1.00),
        (13.25, 0.95),
        (14.0, 0.65),
        (15.0, 0.55),
        (16.0, 0.65),
        (16.5, 0.85),
        (17.0, 0.95),
    ),
    peak_arrivals_per_hour=(58.0, 68.0),
    service_mix={"cash": 0.64, "non_cash": 0.26, "vip": 0.04, "corporate": 0.06},
    flex_counters=("high",),
    # Customers of a busy branch expect to wait: fewer walk out before the 20-min warning.
    patience_min=20 * MINUTE,
    patience_mean_extra=40 * MINUTE,
    lobby_staff={POST_GREETER: MANAGER, POST_SELF_SERVICE: FLOOR_STAND_IN, POST_WEALTH: ADVISER},
)
REALISTIC_SMALL: Final = _realistic(
    NO_LOBBY_MANAGER,
    "a small branch without a lobby manager: one flexible cash counter for queues",
    open_above=4.0,
    flex_counters=("high",),
)
REALISTIC: Final = (
    REALISTIC_BUSY,
    REALISTIC_ORDINARY,
    REALISTIC_BUSY,
    REALISTIC_SMALL,
    REALISTIC_ORDINARY,
)

# Scenario name -> the profiles its branches take in turn (br-0001 the first, …).
SCENARIOS: Final[dict[str, tuple[Profile, ...]]] = {
    "normal": (DEFAULT_PROFILE,),
    "thin": THIN_STAFFING,
    "demo": (THIN_STAFFED, BUSY, PRINTER_OUT),
    "realistic": REALISTIC,
}
DEFAULT_SCENARIO: Final = "normal"


def scenario_profiles(scenario: str, count: int) -> list[Profile]:
    """The profile of each of ``count`` branches in ``scenario``."""
    try:
        cycle = SCENARIOS[scenario]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {scenario!r} (known: {known})") from None
    return [cycle[i % len(cycle)] for i in range(count)]
