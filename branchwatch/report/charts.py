"""The report's charts: horizontal bars against a target line, drawn by matplotlib as SVG.

Drawn on the server (the Agg backend, no display needed) and inlined in the page, so
the file opens offline and prints sharply. Text stays text (``svg.fonttype = none``):
the viewer's sans-serif font draws it. Every chart's ids get a prefix of their own,
since several SVGs share one HTML document.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import matplotlib

matplotlib.use("Agg")  # before pyplot or a backend is touched: no display on a server

from matplotlib.figure import Figure

MISSED: Final = "#b3261e"  # dark red: reads as dark in a grey print too
MET: Final = "#9bb7d4"  # light blue-grey
TARGET_LINE: Final = "#222222"
BAR_HEIGHT_INCHES: Final = 0.32
WIDTH_INCHES: Final = 7.5
_ID = re.compile(r'\bid="([^"]+)"')


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: no data (drawn as a note, no bar)


@dataclass(frozen=True)
class Chart:
    """Bars, top to bottom, in display units (minutes, %), against ``target`` if any."""

    title: str
    bars: Sequence[Bar]
    unit: str  # "min", "%": the axis label and each bar's end label
    digits: int = 0  # decimals of the end labels
    target: float | None = None
    lower_is_better: bool = True

    def show(self, value: float) -> str:
        return f"{value:.{self.digits}f} {self.unit}"

    def missed(self, value: float) -> bool:
        if self.target is None:
            return False
        return value > self.target if self.lower_is_better else value < self.target


def chart_svg(chart: Chart, chart_id: str) -> str:
    """``<svg …>…</svg>`` of ``chart``, ready to inline; ids prefixed with ``chart_id``."""
    style = {
        "svg.fonttype": "none",
        "svg.hashsalt": "branchwatch-report",  # the same page for the same figures
        "font.family": "sans-serif",
        "font.size": 9,
    }
    with matplotlib.rc_context(style):  # type: ignore[arg-type]  # keys are valid rcParams
        return _inline(_draw(chart), chart_id, chart.title)


def _draw(chart: Chart) -> str:
    rows = max(1, len(chart.bars))
    figure = Figure(figsize=(WIDTH_INCHES, 1.5 + BAR_HEIGHT_INCHES * rows))
    axes = figure.subplots()
    labels = [bar.label for bar in chart.bars]
    values = [bar.value or 0.0 for bar in chart.bars]
    positions = list(range(len(chart.bars)))
    colours = [
        MISSED if bar.value is not None and chart.missed(bar.value) else MET for bar in chart.bars
    ]
    axes.barh(positions, values, color=colours, height=0.7)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()  # the first bar (the worst branch, the best teller) on top
    top = max([*values, chart.target or 0.0, 1e-9])
    axes.set_xlim(0, top * 1.22)
    for position, bar in zip(positions, chart.bars, strict=True):
        text = "no data" if bar.value is None else chart.show(bar.value)
        axes.text((bar.value or 0.0) + top * 0.01, position, text, va="center", fontsize=8)
    if chart.target is not None:
        axes.axvline(chart.target, color=TARGET_LINE, linestyle="--", linewidth=1)
        axes.text(
            chart.target,
            -0.75,
            f"target {chart.show(chart.target)}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    if not chart.bars:
        axes.text(0.5, 0.5, "no data in this period", ha="center", transform=axes.transAxes)
        axes.set_yticks([])
    axes.set_title(chart.title, loc="left", fontsize=10, pad=14)
    axes.set_xlabel(chart.unit)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _inline(svg: str, prefix: str, title: str) -> str:
    """The ``<svg>`` element alone (no XML prolog, doctype or metadata), ids prefixed."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    for name in set(_ID.findall(svg)):
        quoted = re.escape(name)
        svg = re.sub(rf'\bid="{quoted}"', f'id="{prefix}-{name}"', svg)
        svg = re.sub(rf"#{quoted}\b(?=[\")])", f"#{prefix}-{name}", svg)
    label = html.escape(title, quote=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
