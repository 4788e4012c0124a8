"""A small, deterministic YAML writer for rule files (no PyYAML dependency).

Handles what rule files hold: mappings (insertion order kept), lists, strings, ints,
floats and bools. Multi-line strings become ``|-`` block scalars (readable PromQL); other
strings are double-quoted JSON strings, which YAML reads as the same string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

Yaml = Mapping[str, "Yaml"] | Sequence["Yaml"] | str | int | float | bool


def _scalar(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _lines(value: Yaml, indent: int) -> list[str]:
    """``value`` as lines at ``indent`` spaces, for a value that follows a key or a dash."""
    pad = " " * indent
    if isinstance(value, Mapping):
        out: list[str] = []
        for key, item in value.items():
            out.extend(_entry(f"{pad}{key}:", item, indent))
        return out
    if isinstance(value, str | int | float | bool):
        raise TypeError("scalars are written inline")
    out = []
    for item in value:
        child = _lines(item, indent + 2) if not _is_scalar(item) else [f"{pad}  {_scalar(item)}"]  # type: ignore[arg-type]
        first = child[0]
        out.append(f"{pad}- {first[indent + 2 :]}")
        out.extend(child[1:])
    return out


def _is_scalar(value: Yaml) -> bool:
    return isinstance(value, str | int | float | bool)


def _entry(head: str, value: Yaml, indent: int) -> list[str]:
    if isinstance(value, str) and "\n" in value:
        body = [
            (" " * (indent + 2) + line) if line else "" for line in value.rstrip("\n").split("\n")
        ]
        return [f"{head} |-", *body]
    if _is_scalar(value):
        return [f"{head} {_scalar(value)}"]  # type: ignore[arg-type]
    if not value:
        return [f"{head} {'{}' if isinstance(value, Mapping) else '[]'}"]
    return [head, *_lines(value, indent + 2)]


def dump(document: Mapping[str, Yaml], header: str = "") -> str:
    """The YAML text of ``document``, after ``header`` comment lines (``# ...``)."""
    comments = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    return "\n".join([*comments, *_lines(document, 0)]) + "\n"
