"""The repository explains itself: nothing shipped cites a file outside it, and doc links work.

Users get this repository and nothing else, so no tracked file may send them to an
internal design file ("DESIGN.md", "DESIGN §4"); the map of the system is
docs/architecture.md. And every relative link in README.md and docs/ must reach a file
of the repository, and a heading of it when the link names one.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from functools import cache
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
OUTSIDE_REFERENCE: Final = re.compile(r"DESIGN(\.md| §)")
# The test suite and the CI driver may name the file they guard against; nothing else may.
NOT_SCANNED: Final = ("tests/", ".ci/")

FENCE: Final = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE: Final = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK: Final = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING: Final = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL: Final = ("http://", "https://", "mailto:")


def tracked_files() -> list[str]:
    if not (ROOT / ".git").exists():
        message = "not a git checkout: nothing tells which files are shipped"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI always runs from a clone: a skip would hide the check
        pytest.skip(message)
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listing.split("\0") if name]


def markdown_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks (fenced lines blanked)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: plain text, lower case, punctuation dropped."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = (
        ch
        for ch in text
        if ch in " -_" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def link_problem(source: Path, target: str) -> str | None:
    """Why ``target`` (as written in ``source``) leads nowhere, or None when it works."""
    file_part, _, anchor = target.partition("#")
    resolved = (source.parent / file_part).resolve() if file_part else source
    if not resolved.is_relative_to(ROOT):
        return "leaves the repository"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link or image of a Markdown file."""
    lines = prose_lines(path.read_text(encoding="utf-8"))
    text = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), "\n".join(lines))
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in LINK.finditer(text)
        if not match.group(1).startswith(EXTERNAL)
    ]


def test_no_shipped_file_cites_a_design_file_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        if name.startswith(NOT_SCANNED) or not (ROOT / name).is_file():
            continue
        text = (ROOT / name).read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_REFERENCE.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, (
        f"{len(offenders)} lines cite a design file users do not have; say it in place or "
        "link docs/architecture.md:\n" + "\n".join(offenders)
    )


def test_every_relative_link_in_the_docs_leads_somewhere() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{number}: ({target}) {problem}"
        for path in markdown_docs()
        for number, target in relative_links(path)
        if (problem := link_problem(path, target))
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_links_and_anchors(tmp_path: Path) -> None:
    """The checker itself: links are found outside code, anchors follow GitHub's slugs."""
    doc = ROOT / "docs" / "architecture.md"
    assert {"the-wire-contract", "scale-out", "two-alerting-tiers"} <= anchors(doc)
    assert github_slug("2b. …or push them with `branchwatch grafana push`") == (
        "2b-or-push-them-with-branchwatch-grafana-push"
    )
    assert link_problem(doc, "contract.md#rejection-reasons") is None
    assert link_problem(doc, "contract.md#no-such-heading") is not None
    assert link_problem(doc, "no-such-file.md") == "no such file"
    assert link_problem(doc, "../../etc/passwd") == "leaves the repository"
    sample = tmp_path / "sample.md"
    sample.write_text(
        "See [the map](a.md#x) and `[not](code.md)`.\n```\n[nor](fenced.md)\n```\n"
        "![pic](img.png) [web](https://example.com) [split\nlink](b.md)\n"
    )
    assert relative_links(sample) == [(1, "a.md#x"), (5, "img.png"), (5, "b.md")]
