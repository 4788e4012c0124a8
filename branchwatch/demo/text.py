"""Small text helpers of the demo's view: tolerant field reading, durations, colour.

The view reads JSON it does not control (an older or newer collector): every
reader here returns None or "–" for a missing or malformed value, never raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

MISSING: Final = "–"
RED: Final = "31"
YELLOW: Final = "33"
GREEN: Final = "32"
DIM: Final = "2"
BOLD: Final = "1"
BOLD_RED: Final = f"{BOLD};{RED}"


def paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if count(value) is not None:
        return str(value)
    return MISSING


def count_text(value: Any) -> str:
    n = count(value)
    return MISSING if n is None else str(n)


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.0f}%"


def duration(seconds: float) -> str:
    """``59s``, ``2m13s``, ``1h02m``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def limit(seconds: float) -> str:
    """A threshold, as short as it reads: ``2m``, ``20m``, ``1m30s``, ``1h``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"
