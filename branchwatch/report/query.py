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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

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
        form = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
        # The scheme was checked by prometheus_url(): http or https only.
        request = urllib.request.Request(  # noqa: S310
            self.url + "/api/v1/query", data=form, method="POST"
        )
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        body = self._fetch(request)
        if body.get("status") != "success" or body["data"]["resultType"] != "vector":
            raise PrometheusError(f"Prometheus at {self.url} answered {str(body)[:300]}")
        samples = []
        for row in body["data"]["result"]:
            value = float(row["value"][1])
            if math.isfinite(value):
                samples.append(Sample(dict(row["metric"]), value))
        return samples

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
        return f"count by ({BRANCH}) (max_over_time({self._sampled(self._device_down())}) == 1)"

    def ratings(self) -> str:
        rise = self.rise(metrics.EVALUATIONS.name)
        return f"sum by ({BRANCH}, rating) (max by ({BRANCH}, counter, rating) ({rise}))"

    def teller_ratings(self) -> str:
        return f"max by ({BRANCH}, teller, rating) ({self.rise(metrics.TELLER_EVALUATIONS.name)})"

    def teller_served(self) -> str:
        return f"max by ({BRANCH}, teller) ({self.rise(metrics.TELLER_SERVED.name)})"


def branch_counts(
    prom: Prometheus, queries: Queries, at: float, thresholds: Thresholds
) -> list[BranchCounts]:
    """Each branch seen in the window, with its counts (sorted by region, branch)."""
    found: dict[tuple[str, str], BranchCounts] = {}

    def each(promql: str) -> Iterable[tuple[BranchCounts, Sample]]:
        for sample in prom.query(promql, at):
            key = (sample.labels.get("region", ""), sample.labels.get("branch", ""))
            if key in found:
                yield found[key], sample

    for sample in prom.query(queries.branches(), at):
        key = (sample.labels.get("region", ""), sample.labels.get("branch", ""))
        found[key] = BranchCounts(region=key[0], branch=key[1])
    per_step = queries.step / 60.0
    target = f'le="{bucket_label(thresholds.wait_target_seconds)}"'
    sums = {
        "issued": queries.counted(metrics.TICKETS_ISSUED.name, "service"),
        "served": queries.counted(metrics.TICKETS_SERVED.name, "service"),
        "walkouts": queries.counted(metrics.TICKETS_LOST.name, "service", 'reason="walkout"'),
        "waits": queries.counted(metrics.WAIT_SECONDS.count, "service"),
        "wait_seconds": queries.counted(metrics.WAIT_SECONDS.sum, "service"),
        "within_target": queries.counted(metrics.WAIT_SECONDS.bucket, "service", target),
        "requested": queries.counted(metrics.EVALUATIONS_REQUESTED.name, "counter"),
        "notices_unanswered": queries.counted(metrics.NOTICES.name, "kind", 'outcome="unanswered"'),
    }
    for name, promql in sums.items():
        for counts, sample in each(promql):
            setattr(counts, name, sample.value)
    sampled = {
        "open_minutes": queries.open_samples(),
        "post1_empty_minutes": queries.post1_empty_samples(),
        "device_down_minutes": queries.device_down_samples(),
    }
    for name, promql in sampled.items():
        for counts, sample in each(promql):
            setattr(counts, name, sample.value * per_step)
    for counts, sample in each(queries.devices_down()):
        counts.devices_down = round(sample.value)
    for counts, sample in each(queries.ratings()):
        counts.ratings += sample.value
        if sample.labels.get("rating") in GOOD_RATINGS:
            counts.good_ratings += sample.value
    return [found[key] for key in sorted(found)]


def teller_counts(prom: Prometheus, queries: Queries, at: float) -> list[TellerCounts]:
    """Each teller rated or serving in the window (none while the collector exports no
    per-teller families)."""
    found: dict[tuple[str, str, str], TellerCounts] = {}

    def teller(sample: Sample) -> TellerCounts:
        labels = sample.labels
        key = (labels.get("region", ""), labels.get("branch", ""), labels.get("teller", ""))
        return found.setdefault(key, TellerCounts(*key))

    for sample in prom.query(queries.teller_ratings(), at):
        counts = teller(sample)
        counts.ratings += sample.value
        if sample.labels.get("rating") in GOOD_RATINGS:
            counts.good_ratings += sample.value
    for sample in prom.query(queries.teller_served(), at):
        teller(sample).served += sample.value
    # A teller's series outlive their shifts: one who did nothing in the window is left out.
    return [found[key] for key in sorted(found) if found[key].ratings or found[key].served]
