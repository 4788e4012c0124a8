"""Build the boards to Grafana dashboard JSON; the committed files are this module's output.

``make dashboards`` (``branchwatch grafana build --out dashboards/json``) rewrites
``dashboards/json/``; a unit test fails when the committed JSON differs from a
fresh build, so a board edited in Python but not rebuilt cannot be merged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from branchwatch.errors import ConfigError
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds
from dashboards import fleet, floor, wall

JSON_DIR: Final = Path(__file__).parent / "json"
# uid -> builder (of the deployment's thresholds), in the order the boards are listed and pushed.
BOARDS: Final[dict[str, Callable[[Thresholds], builders.Dashboard]]] = {
    wall.UID: wall.build,
    floor.UID: floor.build,
    fleet.UID: fleet.build,
}


# Grafana adds its built-in "Annotations & Alerts" query (every annotation of the board,
# all branches) to a board without one, switched on. Ours is there and off, so the floor
# board shows the incidents of the branch on screen only (its tag-filtered query).
BUILT_IN_ANNOTATIONS: Final = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": False,
    "hide": False,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts (all branches)",
    "type": "dashboard",
}


def build_board(uid: str, limits: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """One board as the JSON object Grafana stores (``id`` null: matched by uid)."""
    encoded = JSONEncoder(sort_keys=True).encode(BOARDS[uid](limits).build())
    board: dict[str, Any] = json.loads(encoded)
    board["id"] = None
    annotations = board.setdefault("annotations", {}).setdefault("list", [])
    annotations.insert(0, dict(BUILT_IN_ANNOTATIONS))
    for index, panel in enumerate(board.get("panels", []), start=1):
        panel["id"] = index  # stable ids: panel links and annotations refer to them
    for variable in board.get("templating", {}).get("list", []):
        variable.pop("id", None)  # the SDK writes a placeholder uuid Grafana does not need
    return board


def build_all(limits: Thresholds = DEFAULT_THRESHOLDS) -> dict[str, dict[str, Any]]:
    """Every board, built for ``limits`` (the committed JSON: the defaults)."""
    return {uid: build_board(uid, limits) for uid in BOARDS}


def render(board: dict[str, Any]) -> str:
    """The committed text of a board: sorted keys, two-space indent, final newline."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(uid: str) -> str:
    return f"{uid}.json"


def write_all(out: Path, limits: Thresholds = DEFAULT_THRESHOLDS) -> list[Path]:
    """Write every board to ``out`` (created if needed); returns the files written.

    An ``out`` that cannot hold them is a ConfigError naming it (a bad ``--out``).
    """
    boards, written = build_all(limits), []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for uid, board in boards.items():
            path = out / file_name(uid)
            path.write_text(render(board))
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the boards to {out}: {exc.strerror or exc}") from exc
    return written
