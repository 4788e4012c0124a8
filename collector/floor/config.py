"""Floor configuration: services, posts, buckets and caps.

:class:`FloorConfig` is the strict, typed schema (the ``[floor]`` table of the
collector's config file); :class:`FloorRules` is what the model reads on the
hot path, derived once from a validated config and the deployment's
:class:`~branchwatch.thresholds.Thresholds` (the wait targets live there, once).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Final

import msgspec

from branchwatch.contract.ids import TOKEN_PATTERN
from branchwatch.errors import ConfigError
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds
from collector.floor.figures import INTERCOM_ACK_BUCKETS
from collector.notices.view import NOTICE_SERIES

_SERVICE_RE: Final = re.compile(TOKEN_PATTERN)
MAX_POST_NAME: Final = 64
TELLER_SERIES: Final = 5  # a teller's ratings (4) and served
INTERCOM_PAIR_SERIES: Final = len(INTERCOM_ACK_BUCKETS) + 3  # buckets, +Inf, _sum, _count


class PostConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    position: int  # 1..99
    name: str


DEFAULT_POSTS: Final = (
    PostConfig(1, "greeting and ticket desk"),
    PostConfig(2, "self-service machines"),
    PostConfig(3, "form desk and waiting area"),
    PostConfig(4, "low counters"),
    PostConfig(5, "high counters"),
    PostConfig(6, "VIP high counter"),
    PostConfig(7, "VIP wealth-management room"),
)


class FloorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    services: tuple[str, ...] = ("cash", "non_cash", "vip", "corporate")
    posts: tuple[PostConfig, ...] = DEFAULT_POSTS
    required_posts: tuple[int, ...] = (1, 2)
    backfill_order: tuple[int, ...] = (3, 4, 7)
    # The wait histogram also gets a bucket at each wait threshold (effective_wait_buckets).
    wait_buckets: tuple[float, ...] = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600)
    service_buckets: tuple[float, ...] = (30, 60, 120, 300, 600, 900, 1800)
    # Label cardinality: a branch never renders more than max_series series, so one
    # Prometheus holds a whole region. validate() proves it: the fixed series of the
    # services and posts, the worst case of every cap below and (notices on) the 42
    # of the floor notice families must fit. The defaults need 369: a deployment that
    # moves one wait threshold off the buckets (+1 per service) still fits; moving all
    # three (+12) needs max_series 381. The trade-off is series per branch x branches
    # per Prometheus: a region of ~2,000 branches at 375 is ~750,000 series at worst
    # (a simulated branch uses ~280), well within one Prometheus with room for history
    # and churn; every 10 series more per branch is 20,000 more per region. Raise a cap
    # only with max_series, knowing that.
    max_series: int = 375
    max_counters: int = 12  # per branch; 5 series each
    max_agents: int = 4  # per branch; 7 series each
    max_devices: int = 24  # per branch, all agents together; 1 series each
    max_faults: int = 12  # distinct (device, fault) pairs per branch; 1 series each
    # Distinct (agent, device, reason) of bad frames per branch; 1 series each.
    max_bad_frame_series: int = 8
    # Tellers with ratings and transactions per branch (5 series each: 4 ratings, served).
    # A teller not seen since the day's opening gives its place to a new one.
    max_tellers: int = 8
    # Distinct (from service, to service) ticket transfers per branch; 1 series each.
    max_transfer_pairs: int = 4
    # Distinct (calling post, called post) intercom hand-offs per branch; 5 series each.
    max_intercom_pairs: int = 3

    def effective_wait_buckets(
        self, thresholds: Thresholds = DEFAULT_THRESHOLDS
    ) -> tuple[float, ...]:
        """Wait histogram bounds: the configured buckets plus every wait threshold.

        With a bucket at each threshold, "called within target" and the other wait
        shares are exact ``le`` selections, whatever the deployment's thresholds.
        """
        targets = {
            thresholds.wait_target_seconds,
            thresholds.wait_warning_seconds,
            thresholds.wait_critical_seconds,
        }
        return tuple(sorted({float(b) for b in self.wait_buckets} | targets))

    def fixed_series(self, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> int:
        """Series every branch renders whatever its counters, agents and devices."""
        wait = len(self.effective_wait_buckets(thresholds)) + 3  # buckets, +Inf, _sum, _count
        service = len(self.service_buckets) + 3
        # waiting, oldest, issued, served, lost x3, both histograms
        per_service = 1 + 1 + 1 + 1 + 3 + wait + service
        # open, opened-at and rebuilding; counters per state (3); staffed and changed-at
        # per post
        return 3 + len(self.services) * per_service + 3 + 2 * len(self.posts)

    def worst_case_series(
        self, thresholds: Thresholds = DEFAULT_THRESHOLDS, *, notices: bool = False
    ) -> int:
        """The most series a branch can render; ``notices``: with the floor notice families."""
        return (
            self.fixed_series(thresholds)
            + 5 * self.max_counters
            + 7 * self.max_agents
            + self.max_devices
            + self.max_faults
            + self.max_bad_frame_series
            + TELLER_SERIES * self.max_tellers
            + self.max_transfer_pairs
            + INTERCOM_PAIR_SERIES * self.max_intercom_pairs
            + (NOTICE_SERIES if notices else 0)
        )

    def validate(
        self, thresholds: Thresholds = DEFAULT_THRESHOLDS, *, notices: bool = False
    ) -> None:
        """Raise :class:`ConfigError` naming the first setting that cannot be used.

        ``thresholds`` (validated by their owner) add wait buckets, and floor
        notices (``notices``: they are on) add their families: both count towards
        the series budget.
        """
        _check_services(self.services)
        positions = _check_posts(self.posts)
        check_post_list("floor.required_posts", self.required_posts, positions)
        check_post_list("floor.backfill_order", self.backfill_order, positions)
        _check_buckets("wait_buckets", self.wait_buckets)
        _check_buckets("service_buckets", self.service_buckets)
        for setting, cap in (
            ("max_counters", self.max_counters),
            ("max_agents", self.max_agents),
            ("max_devices", self.max_devices),
            ("max_faults", self.max_faults),
            ("max_bad_frame_series", self.max_bad_frame_series),
            ("max_tellers", self.max_tellers),
            ("max_transfer_pairs", self.max_transfer_pairs),
            ("max_intercom_pairs", self.max_intercom_pairs),
        ):
            if cap < 1:
                raise ConfigError(f"floor.{setting} must be at least 1, got {cap}")
        worst_case = self.worst_case_series(thresholds, notices=notices)
        if worst_case > self.max_series:
            with_notices = f", + floor notices {NOTICE_SERIES}" if notices else ""
            raise ConfigError(
                f"floor: a branch could render {worst_case} series "
                f"(services and posts {self.fixed_series(thresholds)}, + 5 x max_counters, "
                "+ 7 x max_agents, + max_devices, + max_faults, + max_bad_frame_series, "
                f"+ {TELLER_SERIES} x max_tellers, + max_transfer_pairs, "
                f"+ {INTERCOM_PAIR_SERIES} x max_intercom_pairs{with_notices}) but "
                f"floor.max_series is {self.max_series}: lower the caps, or raise max_series "
                "knowing that Prometheus then holds fewer branches"
            )


def _check_services(services: tuple[str, ...]) -> None:
    if not services:
        raise ConfigError("floor.services must name at least one service")
    for service in services:
        if not _SERVICE_RE.match(service):
            raise ConfigError(
                f"floor.services: {service!r} is not a service name "
                "(1-24 characters of a-z, 0-9 and _)"
            )
    if len(set(services)) != len(services):
        raise ConfigError(f"floor.services lists a service twice: {list(services)}")


def _check_posts(posts: tuple[PostConfig, ...]) -> set[int]:
    if not posts:
        raise ConfigError("floor.posts must configure at least one post")
    positions: set[int] = set()
    for post in posts:
        if not 1 <= post.position <= 99:
            raise ConfigError(f"floor.posts: position {post.position} is not in 1..99")
        if post.position in positions:
            raise ConfigError(f"floor.posts: position {post.position} is configured twice")
        if not post.name.strip() or len(post.name) > MAX_POST_NAME:
            raise ConfigError(
                f"floor.posts: post {post.position} needs a name of 1-{MAX_POST_NAME} characters"
            )
        positions.add(post.position)
    return positions


def check_post_list(
    setting: str,
    refs: tuple[int, ...],
    positions: Collection[int],
    error: type[ConfigError] = ConfigError,
) -> None:
    """Refuse a list of posts (``setting`` as written in the file) that names a post
    twice or one not configured in ``[floor]`` posts (``positions``)."""
    if len(set(refs)) != len(refs):
        raise error(f"{setting} lists a post twice: {list(refs)}")
    unknown = [p for p in refs if p not in positions]
    if unknown:
        raise error(
            f"{setting} refers to posts {unknown} that are not configured in [floor] posts "
            f"(configured: {sorted(positions)})"
        )


def _check_buckets(setting: str, buckets: tuple[float, ...]) -> None:
    if not buckets:
        raise ConfigError(f"floor.{setting} must list at least one bucket")
    previous = 0.0
    for bound in buckets:
        if not (math.isfinite(bound) and bound > previous):
            raise ConfigError(
                f"floor.{setting} must be positive, finite and strictly increasing, "
                f"got {list(buckets)}"
            )
        previous = bound


class FloorRules:
    """The validated config in the shapes the model's hot path reads."""

    __slots__ = (
        "backfill_order",
        "max_agents",
        "max_bad_frame_series",
        "max_counters",
        "max_devices",
        "max_faults",
        "max_intercom_pairs",
        "max_tellers",
        "max_transfer_pairs",
        "post_names",
        "required_posts",
        "service_buckets",
        "services",
        "thresholds",
        "wait_buckets",
    )

    def __init__(
        self,
        config: FloorConfig,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        *,
        notices: bool = False,
    ) -> None:
        config.validate(thresholds, notices=notices)
        self.thresholds: Final = thresholds
        self.services: Final[tuple[str, ...]] = config.services
        self.post_names: Final[dict[int, str]] = {p.position: p.name for p in config.posts}
        self.required_posts: Final[frozenset[int]] = frozenset(config.required_posts)
        self.backfill_order: Final[tuple[int, ...]] = config.backfill_order
        self.wait_buckets: Final[tuple[float, ...]] = config.effective_wait_buckets(thresholds)
        self.service_buckets: Final[tuple[float, ...]] = tuple(
            float(b) for b in config.service_buckets
        )
        self.max_counters: Final = config.max_counters
        self.max_agents: Final = config.max_agents
        self.max_devices: Final = config.max_devices
        self.max_faults: Final = config.max_faults
        self.max_bad_frame_series: Final = config.max_bad_frame_series
        self.max_tellers: Final = config.max_tellers
        self.max_transfer_pairs: Final = config.max_transfer_pairs
        self.max_intercom_pairs: Final = config.max_intercom_pairs
