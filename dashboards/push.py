"""Push the boards to a running Grafana: folder, optional data source, dashboards by uid.

Idempotent: the folder and the data source are found by their stable uids and
created only when missing (the data source is updated to the given URL); each
board is saved with ``overwrite: true`` under its uid, so a second push makes a
new version of the same dashboards, never copies.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Final

import msgspec

from dashboards.api import GrafanaConnection
from dashboards.build import build_all

log = logging.getLogger(__name__)

FOLDER_UID: Final = "branchwatch"
FOLDER_TITLE: Final = "branchwatch"
DATASOURCE_UID: Final = "branchwatch-prometheus"
DATASOURCE_NAME: Final = "branchwatch Prometheus"


class PushedBoard(msgspec.Struct, frozen=True):
    uid: str
    title: str
    version: int | None
    url: str


class PushReport(msgspec.Struct, frozen=True):
    folder_uid: str
    folder_created: bool
    datasource: str  # "created", "updated" or "" (not asked for)
    boards: list[PushedBoard]


def datasource_body(prometheus_url: str) -> dict[str, Any]:
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }


def select_datasource(board: dict[str, Any], uid: str, name: str) -> dict[str, Any]:
    """A copy of ``board`` whose data source variables start on the given data source
    (``$datasource``, and the wall's ``$global``: one Prometheus serves both)."""
    board = copy.deepcopy(board)
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            variable["current"] = {"selected": True, "text": name, "value": uid}
    return board


def _ensure_datasource(grafana: GrafanaConnection, prometheus_url: str) -> str:
    """Create or update the data source; one provisioned from files is left as it is."""
    body = datasource_body(prometheus_url)
    existing = grafana.datasource(DATASOURCE_UID)
    if existing is None:
        grafana.create_datasource(body)
        outcome = "created"
    elif existing.get("readOnly"):
        # Provisioned by a file (deploy/grafana/): Grafana refuses API updates of those.
        log.warning("data source %s is provisioned from a file: not updated", DATASOURCE_UID)
        return "provisioned, left as is"
    else:
        grafana.update_datasource(DATASOURCE_UID, body)
        outcome = "updated"
    log.info("%s data source %s -> %s", outcome, DATASOURCE_UID, prometheus_url)
    return outcome


def push(
    grafana: GrafanaConnection,
    folder_title: str = FOLDER_TITLE,
    folder_uid: str = FOLDER_UID,
    prometheus_url: str | None = None,
    boards: dict[str, dict[str, Any]] | None = None,
) -> PushReport:
    boards = build_all() if boards is None else boards
    folder_created = False
    folder = grafana.folder(folder_uid)
    if folder is None:
        grafana.create_folder(folder_uid, folder_title)
        folder_created = True
        log.info("created folder %r (uid %s)", folder_title, folder_uid)
    elif folder.get("title") != folder_title:
        log.warning(
            "folder uid %s exists as %r: keeping its title (rename it in Grafana)",
            folder_uid,
            folder.get("title"),
        )
    datasource = ""
    if prometheus_url:
        datasource = _ensure_datasource(grafana, prometheus_url)
    pushed = []
    for uid, built in boards.items():
        board = (
            select_datasource(built, DATASOURCE_UID, DATASOURCE_NAME) if prometheus_url else built
        )
        saved = grafana.save_dashboard(board, folder_uid)
        version = saved.get("version")
        pushed.append(
            PushedBoard(
                uid=uid,
                title=str(board.get("title", uid)),
                version=version if isinstance(version, int) else None,
                url=str(saved.get("url", "")),
            )
        )
    return PushReport(folder_uid, folder_created, datasource, pushed)
