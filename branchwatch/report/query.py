"""What the report asks Prometheus, and asking it (its HTTP API, the standard library's urllib).

Every figure is one instant query evaluated at the end of the report's window:

* counts are ``increase(family[window])``. An HA pair of collectors exports each
  series twice (different ``instance``); ``max by`` the labels that name the thing
  (service, counter, kind...) keeps one copy before the branch's sum, as the alert
  rules do, so nothing is counted twice;
* minutes (the branch open, post 1 empty, devices down) are sampled with a subquery
  ``[window:step]``: each sample where the condition holds stands for one step, so
  a spell is exact to within a step at each end, and one shorter than a step may be
  missed or counted as a whole step. While Prometheus cannot scrape a collector its
  series are stale: that time has no samples (no minutes) unless the HA partner's has.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from branchwatch.contract import metrics
from branchwatch.contract.ids import RATINGS, is_site_id
from branchwatch.contract.metrics import bucket_label
from branchwatch.errors import BranchwatchError, ConfigError
from branchwatch.report.figures import BranchCounts, TellerCounts
from branchwatch.thresholds import Thresholds

BRANCH: Final = ", ".join(metrics.BRANCH_LABELS)
GOOD_RATINGS: Final = RATINGS[:2]  # very_satisfied, satisfied: what satisfaction counts
GREETER_POST: Final = 1  # the greeting desk at the door: "never leave it empty"
DEFAULT_TIMEOUT: Final = 60.0
CHUNK: Final = 86400.0  # a long window is asked for a day at a time
ONE_QUERY: Final = 2 * CHUNK  # up to this (a 25 h day too): one instant query
MIN_CHUNK: Final = 0.001  # what is left after whole chunks, if at least this (seconds)


class PrometheusError(BranchwatchError):
    """Prometheus could not be reached or refused a query (exit status 1)."""


def prometheus_url(text: str) -> str:
    """The base URL of a Prometheus (``http(s)://host:port[/prefix]``), without a trailing /."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--prometheus {text!r}: expected http://host:port or https://…")
    if parsed.username or parsed.password:
        raise ConfigError("--prometheus: put no credentials in the URL (they would show in ps)")
    return text.rstrip("/")


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class Prometheus:
    """Instant queries against one Prometheus' HTTP API."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = prometheus_url(url)
        self.timeout = timeout

    def query(self, promql: str, at: float) -> list[Sample]:
        """The instant vector of ``promql`` at ``at`` (Unix seconds); NaN samples dropped."""
        result = self._ask("query", "vector", query=promql, time=f"{at:.3f}")
        return [Sample(dict(row["metric"]), float(row["value"][1])) for row in result]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Sample]:
        """Every point of ``promql`` evaluated at ``start``, ``start + step``… up to ``end``."""
        result = self._ask(
            "query_range", "matrix", query=promql, start=f"{start:.3f}", end=f"{end:.3f}",
            step=f"{step:.3f}",
        )  # fmt: skip
        return [
            Sample(dict(row["metric"]), float(value))
            for row in result
            for _, value in row["values"]
        ]

    def _ask(self, endpoint: str, result_type: str, **form: str) -> list[dict[str, Any]]:
        """The ``result`` of one API call; NaN and infinite values dropped."""
        # The scheme was checked by prometheus_url(): http or https only.
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/api/v1/{endpoint}",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        body = self._fetch(request)
        if body.get("status") != "success" or body["data"]["resultType"] != result_type:
            raise PrometheusError(f"Prometheus at {self.url} answered {str(body)[:300]}")
        rows: list[dict[str, Any]] = []
        for row in body["data"]["result"]:
            if "values" in row:
                row["values"] = [v for v in row["values"] if math.isfinite(float(v[1]))]
                rows.append(row)
            elif math.isfinite(float(row["value"][1])):
                rows.append(row)
        return rows

    def _fetch(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            # 400/422/503 carry Prometheus' own reason in a JSON body.
            detail = exc.read()[:500].decode(errors="replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]
            raise PrometheusError(
                f"Prometheus at {self.url} refused a query: HTTP {exc.code}: {detail}"
            ) from None
        except urllib.error.URLError as exc:
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        except TimeoutError:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        try:
            parsed: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise PrometheusError(
                f"{self.url} did not answer as Prometheus' API does: {raw[:100]!r}"
            ) from None
        return parsed


def duration(seconds: float) -> str:
    """A PromQL duration, in ms when it is not whole seconds (a window may end at "now")."""
    millis = max(1, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def region_matcher(regions: Iterable[str]) -> str:
    """``region=~"a|b"``, or "" for every region; ids are checked so nothing needs escaping."""
    names = sorted(set(regions))
    for name in names:
        if not is_site_id(name):
            raise ConfigError(f"--region {name!r} is not a region id (letters, digits, _ and -)")
    return f'region=~"{"|".join(names)}"' if names else ""


@dataclass(frozen=True)
class Queries:
    """The report's PromQL for one window (``window`` and ``step`` in seconds)."""

    window: float
    step: float
    regions: str = ""  # a region matcher, or ""

    def select(self, name: str, *matchers: str) -> str:
        inside = ", ".join(m for m in (self.regions, *matchers) if m)
        return f"{name}{{{inside}}}" if inside else name

    def rise(self, name: str, *matchers: str) -> str:
        """A counter's rise over the window (per series: every HA copy apart)."""
        return f"increase({self.select(name, *matchers)}[{duration(self.window)}])"

    def counted(self, name: str, by: str, *matchers: str) -> str:
        """A counter's rise over the window per branch, one copy of each ``by`` series."""
        return f"sum by ({BRANCH}) (max by ({BRANCH}, {by}) ({self.rise(name, *matchers)}))"

    def branches(self) -> str:
        """Every branch with a sample in the window (1: it was open at some scrape)."""
        seen = f"max_over_time({self.select(metrics.BRANCH_OPEN.name)}[{duration(self.window)}])"
        return f"max by ({BRANCH}) ({seen})"

    def _open(self) -> str:
        return f"(max by ({BRANCH}) ({self.select(metrics.BRANCH_OPEN.name)}) == 1)"

    def _sampled(self, condition: str) -> str:
        return f"({condition})[{duration(self.window)}:{duration(self.step)}]"

    def open_samples(self) -> str:
        return f"count_over_time({self._sampled(self._open())})"

    def post1_empty_samples(self) -> str:
        staffed = self.select(metrics.POSITION_STAFFED.name, f'position="{GREETER_POST}"')
        empty = f"(max by ({BRANCH}) ({staffed}) == bool 0) and on({BRANCH}) {self._open()}"
        return f"sum_over_time({self._sampled(empty)})"

    def _device_down(self) -> str:
        up = f"max by ({BRANCH}, agent, device) ({self.select(metrics.DEVICE_UP.name)})"
        return f"({up} == bool 0) and on({BRANCH}) {self._open()}"

    def device_down_samples(self) -> str:
        return f"sum by ({BRANCH}) (sum_over_time({self._sampled(self._device_down())}))"

    def devices_down(self) -> str:
        """One series per device found down while open (counted per branch by the caller:
        a device down in several chunks of the window is one device)."""
        return f"max_over_time({self._sampled(self._device_down())}) == 1"

    def ratings(self) -> str:
        rise = self.rise(metrics.EVALUATIONS.name)
        return f"sum by ({BRANCH}, rating) (max by ({BRANCH}, counter, rating) ({rise}))"

    def teller_ratings(self) -> str:
        return f"max by ({BRANCH}, teller, rating) ({self.rise(metrics.TELLER_EVALUATIONS.name)})"

    def teller_served(self) -> str:
        return f"max by ({BRANCH}, teller) ({self.rise(metrics.TELLER_SERVED.name)})"


Build = Callable[[Queries], str]


class Queryable(Protocol):
    def query(self, promql: str, at: float) -> list[Sample]: ...
    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Sample]: ...


@dataclass(frozen=True)
class Window:
    """The report's window ``(start, end]``, asked for a day at a time when it is long.

    One ``increase(x[92d])`` over a region loads every sample of three months at once and
    exceeds Prometheus' ``query.max-samples``: a longer window is asked as one range query
    of day-long chunks (``step`` = a day) plus an instant query for what is left, and the
    chunks are combined per series (added, or the largest kept).
    """

    prom: Queryable
    start: float
    end: float
    step: float  # sampling step of the minute figures
    regions: str = ""  # a region matcher, or ""

    def ask(
        self, build: Build, combine: Callable[[float, float], float] = operator.add
    ) -> list[Sample]:
        total = self.end - self.start
        if total <= ONE_QUERY:
            return self.prom.query(build(self._queries(total)), self.end)
        whole = int(total // CHUNK)
        parts = self.prom.query_range(
            build(self._queries(CHUNK)), self.start + CHUNK, self.start + whole * CHUNK, CHUNK
        )
        rest = total - whole * CHUNK
        if rest >= MIN_CHUNK:
            parts += self.prom.query(build(self._queries(rest)), self.end)
        combined: dict[tuple[tuple[str, str], ...], Sample] = {}
        for part in parts:
            key = tuple(sorted(part.labels.items()))
            prior = combined.get(key)
            value = part.value if prior is None else combine(prior.value, part.value)
            combined[key] = Sample(part.labels, value)
        return list(combined.values())

    def _queries(self, length: float) -> Queries:
        return Queries(window=length, step=self.step, regions=self.regions)


def _branch_of(sample: Sample) -> tuple[str, str]:
    return sample.labels.get("region", ""), sample.labels.get("branch", "")


def _counted(family: str, by: str, *matchers: str) -> Build:
    def build(queries: Queries) -> str:
        return queries.counted(family, by, *matchers)

    return build


def branch_counts(window: Window, thresholds: Thresholds) -> list[BranchCounts]:
    """Each branch seen in the window, with its counts (sorted by region, branch)."""
    found = {
        _branch_of(sample): BranchCounts(*_branch_of(sample))
        for sample in window.ask(Queries.branches, max)
    }

    def each(build: Build) -> Iterable[tuple[BranchCounts, Sample]]:
        for sample in window.ask(build):
            if (counts := found.get(_branch_of(sample))) is not None:
                yield counts, sample

    target = f'le="{bucket_label(thresholds.wait_target_seconds)}"'
    sums: dict[str, tuple[str, str, tuple[str, ...]]] = {
        "issued": (metrics.TICKETS_ISSUED.name, "service", ()),
        "served": (metrics.TICKETS_SERVED.name, "service", ()),
        "walkouts": (metrics.TICKETS_LOST.name, "service", ('reason="walkout"',)),
        "waits": (metrics.WAIT_SECONDS.count, "service", ()),
        "wait_seconds": (metrics.WAIT_SECONDS.sum, "service", ()),
        "within_target": (metrics.WAIT_SECONDS.bucket, "service", (target,)),
        "requested": (metrics.EVALUATIONS_REQUESTED.name, "counter", ()),
        "notices_unanswered": (metrics.NOTICES.name, "kind", ('outcome="unanswered"',)),
    }
    for name, (family, by, matchers) in sums.items():
        for counts, sample in each(_counted(family, by, *matchers)):
            setattr(counts, name, sample.value)
    sampled: dict[str, Build] = {
        "open_minutes": Queries.open_samples,
        "post1_empty_minutes": Queries.post1_empty_samples,
        "device_down_minutes": Queries.device_down_samples,
    }
    for name, build in sampled.items():
        for counts, sample in each(build):
            setattr(counts, name, sample.value * window.step / 60.0)
    for sample in window.ask(Queries.devices_down, max):
        if (down := found.get(_branch_of(sample))) is not None:
            down.devices_down += 1
    for counts, sample in each(Queries.ratings):
        counts.ratings += sample.value
        if sample.labels.get("rating") in GOOD_RATINGS:
            counts.good_ratings += sample.value
    return [found[key] for key in sorted(found)]


def teller_counts(window: Window) -> list[TellerCounts]:
    """Each teller rated or serving in the window (none while the collector exports no
    per-teller families)."""
    found: dict[tuple[str, str, str], TellerCounts] = {}

    def teller(sample: Sample) -> TellerCounts:
        key = (*_branch_of(sample), sample.labels.get("teller", ""))
        return found.setdefault(key, TellerCounts(*key))

    for sample in window.ask(Queries.teller_ratings):
        counts = teller(sample)
        counts.ratings += sample.value
        if sample.labels.get("rating") in GOOD_RATINGS:
            counts.good_ratings += sample.value
    for sample in window.ask(Queries.teller_served):
        teller(sample).served += sample.value
    # A teller's series outlive their shifts: one who did nothing in the window is left out.
    return [found[key] for key in sorted(found) if found[key].ratings or found[key].served]
