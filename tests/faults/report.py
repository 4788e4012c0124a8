"""A scenario's outcome: its figures, its checks, what an operator saw; and the run's table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.rig import Settled


@dataclass(frozen=True)
class Check:
    what: str
    passed: bool
    detail: str = ""


@dataclass
class Outcome:
    """What one fault did. ``ok`` when every check passed (exact totals are one of them)."""

    fault: str
    settled: Settled | None = None
    recovery: float | None = None  # seconds from the repair to the collector caught up
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)  # fault-specific figures
    seen: list[str] = field(default_factory=list)  # what an operator saw (logs, metrics)
    gaps: list[str] = field(default_factory=list)  # known product gaps this run showed

    def check(self, what: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(what, bool(passed), detail))
        return bool(passed)

    def settle(self, settled: Settled, wire_loss_allowed: int = 0) -> None:
        """Record the end figures and check them: the collector exact, the wire as allowed."""
        self.settled = settled
        diff = settled.difference
        self.check(
            "the collector shows exactly what the agents recorded",
            diff.exact,
            f"lost {diff.lost}, duplicated {diff.duplicated}, posts {diff.wrong_posts}",
        )
        self.check(
            f"lost on the wire <= {wire_loss_allowed}",
            0 <= settled.lost_on_the_wire <= wire_loss_allowed,
            f"{settled.lost_on_the_wire} heard by no agent",
        )

    def saw(self, log: str, pattern: str, label: str) -> bool:
        """Note the last log line matching ``pattern`` (a regex) as what an operator sees."""
        matches = re.findall(f"^.*{pattern}.*$", log, re.MULTILINE)
        if matches:
            line = matches[-1]
            if line[:1].isdigit():  # "2026-11-30 12:00:00,000 LEVEL logger: ...": drop the time
                line = line.split(" ", 2)[-1]
            self.seen.append(f"{label}: `{line[:160]}`")
        return bool(matches)

    @property
    def ok(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.what}: {c.detail}" for c in self.checks if not c.passed]


def table(outcomes: list[Outcome]) -> str:
    """The run's figures as a Markdown table (docs/reliability.md quotes it)."""
    rows = [
        "| fault | produced | unheard | recorded | counted | lost | duplicated | "
        "wrong posts | recovery | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for outcome in outcomes:
        s = outcome.settled
        numbers = (
            [s.produced, s.produced - s.heard, s.recorded, s.difference.counted,
             s.difference.lost, s.difference.duplicated, len(s.difference.wrong_posts)]
            if s is not None else ["", "", "", "", "", "", ""]
        )  # fmt: skip
        recovery = "" if outcome.recovery is None else f"{outcome.recovery:.1f} s"
        result = "pass" if outcome.ok else "FAIL"
        cells = [outcome.fault, *(f"{n:,}" if isinstance(n, int) else n for n in numbers)]
        rows.append("| " + " | ".join([*cells, recovery, result]) + " |")
    return "\n".join(rows)


def details(outcomes: list[Outcome]) -> str:
    """Per fault: its own figures, its checks, what was seen, the gaps."""
    parts: list[str] = []
    for outcome in outcomes:
        parts.append(f"### {outcome.fault}\n")
        parts += [f"- {name}: {value}" for name, value in outcome.figures.items()]
        parts += [
            f"- check {'ok  ' if c.passed else 'FAIL'} {c.what}"
            + ("" if c.passed or not c.detail else f" ({c.detail})")
            for c in outcome.checks
        ]
        parts += [f"- seen: {line}" for line in outcome.seen]
        parts += [f"- gap: {gap}" for gap in outcome.gaps]
        parts.append("")
    return "\n".join(parts)


def write(outcomes: list[Outcome], path: Path, header: str) -> None:
    path.write_text(f"{header}\n\n{table(outcomes)}\n\n{details(outcomes)}")
