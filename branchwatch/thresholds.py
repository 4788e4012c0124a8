"""Every service target and alert threshold, in one typed place.

The collector reads them from the ``[thresholds]`` table of its config file;
the alert rules (``python -m alerts.build --config FILE``), the Grafana boards
(``branchwatch grafana build --config FILE``), the demo view and the floor
notices read the same values, so a deployment that changes a target changes
every place that shows or acts on it. The defaults below are the bank's
service standard where it gives a figure and common branch practice where it
does not (see docs/architecture.md).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Final

import msgspec

from branchwatch.errors import ConfigError

# Keys an older config wrote in [floor]; still accepted there (one place at a time).
FLOOR_ALIASES: Final = ("wait_target_seconds", "wait_warning_seconds", "wait_critical_seconds")
# Post 1's page threshold when the collector sends no floor notices: nobody else tells the
# branch, so on-call is paged after the same two minutes as before notices existed.
GREETER_EMPTY_SECONDS_WITHOUT_NOTICES: Final = 120.0


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Targets and thresholds; all in seconds or as shares in (0, 1].

    ``greeter_empty_seconds`` is 600 s by default: the backstop behind the floor
    notices, which tell the branch first and page through their own alert when
    nobody answers. A collector config with ``[notices] enabled = false`` that does
    not set it gets 120 s (:data:`GREETER_EMPTY_SECONDS_WITHOUT_NOTICES`, applied by
    :func:`thresholds_from_tables`): without notices this alert is the only signal.
    """

    # -- waiting customers -------------------------------------------------------------
    # "Called within target": the service-level figure (our addition to the bank's plan).
    wait_target_seconds: float = 900.0
    # A service's oldest waiting ticket: warn (and tell the floor), then page.
    wait_warning_seconds: float = 1200.0
    wait_critical_seconds: float = 1800.0
    # The bank's own figure: the average wait per customer over a business day.
    average_wait_target_seconds: float = 900.0
    # Share of tickets called within wait_target_seconds.
    service_level_target: float = 0.8

    # -- ratings ------------------------------------------------------------------------
    satisfaction_target: float = 0.9  # (very_satisfied + satisfied) / ratings
    evaluation_rate_target: float = 0.8  # ratings / requests

    # -- lobby posts --------------------------------------------------------------------
    # Post 1 (the greeting desk) empty this long while open pages on-call: the backstop
    # behind the floor notices (120 s from a config that turns notices off, see above).
    greeter_empty_seconds: float = 600.0
    # Post 2 (self-service machines) empty this long: a warning.
    lobby_empty_seconds: float = 300.0

    # -- devices ------------------------------------------------------------------------
    # An agent or device down this long while the branch is open.
    device_offline_seconds: float = 300.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first value that cannot be used."""
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"thresholds.{name} must be a positive number, got {value!r}")
        for name in ("service_level_target", "satisfaction_target", "evaluation_rate_target"):
            if getattr(self, name) > 1:
                raise ConfigError(f"thresholds.{name} is a share: it must be in (0, 1]")
        if not self.wait_target_seconds <= self.wait_warning_seconds < self.wait_critical_seconds:
            raise ConfigError(
                "thresholds must satisfy wait_target_seconds <= wait_warning_seconds < "
                f"wait_critical_seconds, got {self.wait_target_seconds} / "
                f"{self.wait_warning_seconds} / {self.wait_critical_seconds}"
            )

    def replace(self, **changes: Any) -> Thresholds:
        """A copy with ``changes``, validated."""
        changed = msgspec.structs.replace(self, **changes)
        changed.validate()
        return changed


DEFAULT_THRESHOLDS: Final = Thresholds()


def thresholds_from_tables(tables: dict[str, Any]) -> Thresholds:
    """The thresholds of a parsed config file: its ``[thresholds]`` table.

    The three wait keys are also accepted in ``[floor]`` (where earlier configs
    had them), but not in both tables at once. ``greeter_empty_seconds`` not set
    while ``[notices] enabled = false``: :data:`GREETER_EMPTY_SECONDS_WITHOUT_NOTICES`.
    """
    raw = tables.get("thresholds", {})
    if not isinstance(raw, dict):
        raise ConfigError("[thresholds] must be a table")
    merged = dict(raw)
    floor = tables.get("floor", {})
    if isinstance(floor, dict):
        for key in FLOOR_ALIASES:
            if key in floor:
                if key in raw:
                    raise ConfigError(
                        f"{key} is set in both [floor] and [thresholds]: keep the one in "
                        "[thresholds]"
                    )
                merged[key] = floor[key]
    if "greeter_empty_seconds" not in merged and not notices_enabled(tables):
        merged["greeter_empty_seconds"] = GREETER_EMPTY_SECONDS_WITHOUT_NOTICES
    try:
        thresholds = msgspec.convert(merged, Thresholds)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[thresholds]: {exc}") from exc
    thresholds.validate()
    return thresholds


def notices_enabled(tables: dict[str, Any]) -> bool:
    """``[notices] enabled`` of a parsed collector config (absent: true, as in the collector)."""
    notices = tables.get("notices", {})
    if not isinstance(notices, dict):
        raise ConfigError("[notices] must be a table")
    enabled = notices.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"notices.enabled must be true or false, got {enabled!r}")
    return enabled


def load_thresholds(path: str | Path) -> Thresholds:
    """The thresholds of a collector config file (other tables are not checked here)."""
    try:
        with open(path, "rb") as fh:
            tables = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return thresholds_from_tables(tables)
