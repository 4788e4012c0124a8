"""Contract test of the push and the annotations against Grafana's documented HTTP API.

Grafana has no Debian package here, so :class:`FakeGrafana` implements the
endpoints branchwatch uses as the Grafana HTTP API reference documents them:

- auth: ``Authorization: Bearer <service-account token>``; a wrong token → 401
  ``{"message": "Invalid API key"}``; a token without the permission → 403;
- ``GET /api/folders/:uid`` (404 when missing), ``POST /api/folders`` ``{uid, title}``
  (409 when the uid exists);
- ``GET /api/datasources/uid/:uid`` (404), ``POST /api/datasources`` (409 on a taken
  name), ``PUT /api/datasources/uid/:uid`` (403 for a read-only, file-provisioned one);
- ``POST /api/dashboards/db`` ``{dashboard, folderUid, overwrite, message}``: by uid;
  an existing uid without ``overwrite`` → 412 ``version-mismatch``, the title of
  another uid in the same folder → 412 ``name-exists``, an unknown folder → 400; each save
  bumps the stored version and answers ``{id, uid, url, status, version, slug}``;
- ``POST /api/annotations`` ``{dashboardUID, time, timeEnd, tags, text}`` → ``{id, message}``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from branchwatch.broker import free_port
from branchwatch.cli import main
from collector.config import GrafanaConfig
from collector.floor.posts import PostIncident
from collector.grafana import Annotator
from dashboards.api import GrafanaConnection, GrafanaError, check_url
from dashboards.build import build_all
from dashboards.push import DATASOURCE_UID, FOLDER_UID, push
from tests.support import wait_until

TOKEN = "glsa_branchwatch_test_token_5f3c"
VIEWER_TOKEN = "glsa_viewer_only_token_0a1b"


class FakeGrafana:
    """The Grafana HTTP API subset branchwatch uses, in memory, on a free loopback port."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {dashboard, folderUid, version}
        self.annotations: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, token: str | None, body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            if token not in (TOKEN, VIEWER_TOKEN):
                return 401, {"message": "Invalid API key"}
            if method != "GET" and token == VIEWER_TOKEN:
                return 403, {"message": "Access denied"}
            return self._route(method, path, body)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if m := re.fullmatch(r"/api/folders/([^/]+)", path):
            folder = self.folders.get(m[1])
            return (200, folder) if folder else (404, {"message": "folder not found"})
        if path == "/api/folders" and method == "POST":
            return self._create_folder(body)
        if m := re.fullmatch(r"/api/datasources/uid/([^/]+)", path):
            return self._datasource(method, m[1], body)
        if path == "/api/datasources" and method == "POST":
            return self._create_datasource(body)
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(body)
        if path == "/api/annotations" and method == "POST":
            return self._annotate(body)
        return 404, {"message": "Not found"}

    def _create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        uid, title = body.get("uid"), body.get("title")
        if not title:
            return 400, {"message": "folder title cannot be empty"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {"id": len(self.folders) + 1, "uid": uid, "title": title, "version": 1}
        self.folders[str(uid)] = folder
        return 200, folder

    def _datasource(self, method: str, uid: str, body: Any) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if method == "GET":
            return 200, self.datasources[uid]
        if method == "PUT" and self.datasources[uid].get("readOnly"):
            return 403, {"message": "Cannot update read-only data source"}
        if method == "PUT":
            stored = {
                **self.datasources[uid],
                **body,
                "version": self.datasources[uid]["version"] + 1,
            }
            self.datasources[uid] = stored
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated"}
        return 405, {"message": "Method not allowed"}

    def _create_datasource(self, body: dict[str, Any]) -> tuple[int, Any]:
        if any(ds["name"] == body.get("name") for ds in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        if body.get("uid") in self.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        stored = {**body, "id": len(self.datasources) + 1, "version": 1}
        self.datasources[str(body["uid"])] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added"}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        board, folder_uid = body.get("dashboard"), body.get("folderUid", "")
        if not isinstance(board, dict) or not board.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        uid = board.get("uid")
        for other_uid, other in self.dashboards.items():
            same_place = other["folderUid"] == folder_uid
            if other_uid != uid and same_place and other["dashboard"]["title"] == board["title"]:
                return 412, {
                    "message": "A dashboard with the same name in the folder already exists",
                    "status": "name-exists",
                }
        existing = self.dashboards.get(str(uid))
        if existing is not None and not body.get("overwrite"):
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        version = 1 if existing is None else existing["version"] + 1
        number = len(self.dashboards) + 1 if existing is None else existing["id"]
        self.dashboards[str(uid)] = {
            "dashboard": board,
            "folderUid": folder_uid,
            "version": version,
            "id": number,
        }
        slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
        return 200, {
            "id": number,
            "uid": uid,
            "url": f"/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }

    def _annotate(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("text"):
            return 400, {"message": "Failed to save annotation: text is required"}
        self.annotations.append(body)
        return 200, {"message": "Annotation added", "id": len(self.annotations)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
                body = json.loads(raw) if raw else None
                status, answer = fake.handle(self.command, self.path, token, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana() as fake:
        yield fake


def test_first_push_creates_and_second_updates_without_duplicates(grafana: FakeGrafana) -> None:
    connection = GrafanaConnection(grafana.url, TOKEN)
    first = push(connection, prometheus_url="http://prometheus:9090")
    assert first.folder_created and first.datasource == "created"
    assert [b.version for b in first.boards] == [1, 1, 1]
    assert set(grafana.dashboards) == {"branchwatch-wall", "branchwatch-floor", "branchwatch-fleet"}
    assert all(d["folderUid"] == FOLDER_UID for d in grafana.dashboards.values())
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://prometheus:9090"

    second = push(connection, prometheus_url="http://prometheus-2:9090")
    assert not second.folder_created and second.datasource == "updated"
    assert [b.version for b in second.boards] == [2, 2, 2]
    assert len(grafana.folders) == 1 and len(grafana.datasources) == 1
    assert len(grafana.dashboards) == 3
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://prometheus-2:9090"
    assert grafana.datasources[DATASOURCE_UID]["version"] == 2
    assert ("POST", "/api/folders") in grafana.requests
    assert grafana.requests.count(("POST", "/api/folders")) == 1


def test_pushed_boards_are_the_built_boards_starting_on_the_pushed_datasource(
    grafana: FakeGrafana,
) -> None:
    push(GrafanaConnection(grafana.url, TOKEN), prometheus_url="http://prometheus:9090")
    for uid, built in build_all().items():
        stored = grafana.dashboards[uid]["dashboard"]
        assert stored["panels"] == built["panels"]
        variables = [v for v in stored["templating"]["list"] if v["type"] == "datasource"]
        wall = uid == "branchwatch-wall"
        assert {v["name"] for v in variables} == (
            {"datasource", "global"} if wall else {"datasource"}
        )
        assert all(v["current"]["value"] == DATASOURCE_UID for v in variables)


def test_push_without_datasource_url_leaves_datasources_alone(grafana: FakeGrafana) -> None:
    report = push(GrafanaConnection(grafana.url, TOKEN))
    assert report.datasource == "" and grafana.datasources == {}
    stored = grafana.dashboards["branchwatch-wall"]["dashboard"]
    variable = next(v for v in stored["templating"]["list"] if v["name"] == "datasource")
    assert "current" not in variable


def test_a_provisioned_datasource_is_left_alone(grafana: FakeGrafana) -> None:
    grafana.datasources[DATASOURCE_UID] = {
        "uid": DATASOURCE_UID, "name": "from a file", "url": "http://p:9090", "id": 1,
        "version": 1, "readOnly": True,
    }  # fmt: skip
    report = push(GrafanaConnection(grafana.url, TOKEN), prometheus_url="http://other:9090")
    assert report.datasource == "provisioned, left as is"
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://p:9090"
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") not in grafana.requests


def test_bad_token_gives_a_clear_error_without_the_token(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaError) as caught:
        push(GrafanaConnection(grafana.url, "not-the-token"))
    message = str(caught.value)
    assert "Grafana rejected the token (401)" in message
    assert grafana.url in message and "not-the-token" not in message
    assert grafana.dashboards == {}


def test_token_without_permission_says_what_is_missing(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaError) as caught:
        push(GrafanaConnection(grafana.url, VIEWER_TOKEN))
    assert "(403)" in str(caught.value) and "permission" in str(caught.value)


def test_a_same_title_board_under_another_uid_is_explained(grafana: FakeGrafana) -> None:
    connection = GrafanaConnection(grafana.url, TOKEN)
    push(connection)
    squatter = {"uid": "someone-else", "title": "branchwatch · Branch floor", "panels": []}
    grafana.dashboards["someone-else"] = {
        "dashboard": squatter,
        "folderUid": FOLDER_UID,
        "version": 1,
        "id": 99,
    }
    with pytest.raises(GrafanaError) as caught:
        push(connection)
    assert "(412)" in str(caught.value) and "same title" in str(caught.value)


def test_unreachable_grafana_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GrafanaError) as caught:
        push(GrafanaConnection(url, TOKEN, timeout=2.0))
    assert f"cannot reach Grafana at {url}" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://grafana:3000", "http://grafana:3000"),
        ("https://ops.example/grafana", "https://ops.example/grafana/"),
        ("https://ops.example/grafana/", "https://ops.example/grafana/"),
    ],
)
def test_urls_are_normalised_for_the_client(url: str, expected: str) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("grafana:3000", "expected http(s)"),
        ("http://admin:secret@grafana:3000", "carries credentials"),
        ("http://grafana:3000/?orgId=1", "no query"),
    ],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(GrafanaError, match=re.escape(complaint)) as caught:
        check_url(url)
    assert "secret" not in str(caught.value)


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "grafana-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def test_cli_push_then_push_again(
    grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "grafana",
        "push",
        "--url",
        grafana.url,
        "--token-file",
        str(_token_file(tmp_path, TOKEN)),
    ]
    assert main([*argv, "--folder", "Branch operations"]) == 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "folder branchwatch: created" in out and "folder branchwatch: exists" in out
    assert "branchwatch-wall: version 2 /d/branchwatch-wall/" in out
    assert grafana.folders[FOLDER_UID]["title"] == "Branch operations"


def test_cli_bad_token_exits_2_with_the_message(
    grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = _token_file(tmp_path, "wrong-token-value")
    code = main(["grafana", "push", "--url", grafana.url, "--token-file", str(token_file)])
    captured = capsys.readouterr()
    assert code == 2
    assert "Grafana rejected the token (401)" in captured.err
    assert "wrong-token-value" not in captured.err + captured.out
    assert "Traceback" not in captured.err


def test_cli_missing_token_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    code = main(["grafana", "push", "--url", "http://127.0.0.1:1", "--token-file", str(missing)])
    assert code == 2
    assert f"cannot read Grafana token file {missing}" in capsys.readouterr().err


# annotations ----------------------------------------------------------------------------


def _annotator(grafana: FakeGrafana, tmp_path: Path, token: str) -> Annotator:
    config = GrafanaConfig(
        enabled=True, url=grafana.url, token_file=str(_token_file(tmp_path, token))
    )
    return Annotator(config, CollectorRegistry(), {1: "greeting and ticket desk"})


def test_annotations_carry_tags_text_and_the_empty_period(
    grafana: FakeGrafana, tmp_path: Path
) -> None:
    annotator = _annotator(grafana, tmp_path, TOKEN)
    annotator.start()
    try:
        annotator.submit(
            [
                PostIncident("north", "br-0001", 1, "emptied", 1_700_000_000.0, 1_700_000_000.0),
                PostIncident("north", "br-0001", 1, "filled", 1_700_000_200.5, 1_700_000_000.0),
            ]
        )
        wait_until(lambda: len(grafana.annotations) == 2, 5, "two annotations")
    finally:
        annotator.stop()
    emptied, filled = grafana.annotations
    assert_post_1_emptied(emptied, 1_700_000_000_000)
    assert emptied["timeEnd"] is None
    assert emptied["text"] == "Post 1 (greeting and ticket desk) emptied at north/br-0001"
    assert "post-filled" in filled["tags"]
    assert (filled["time"], filled["timeEnd"]) == (1_700_000_000_000, 1_700_000_200_500)
    assert filled["text"].endswith("filled at north/br-0001 after 3 min 20 s empty")
    assert annotator.posted._value.get() == 2


def test_failed_annotations_are_counted_never_raised(
    grafana: FakeGrafana, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    annotator = _annotator(grafana, tmp_path, "revoked-token")
    annotator.start()
    try:
        incident = PostIncident("north", "br-0001", 1, "emptied", 1_700_000_000.0, 1_700_000_000.0)
        annotator.submit([incident, incident, incident])
        wait_until(lambda: annotator.failed._value.get() == 3, 5, "three failures")
    finally:
        annotator.stop()
    assert grafana.annotations == []
    warnings = [r for r in caplog.records if "annotation failed" in r.getMessage()]
    assert len(warnings) == 1  # logged once, counted three times
    assert "rejected the token (401)" in warnings[0].getMessage()
    assert "revoked-token" not in caplog.text


def test_a_full_queue_drops_and_counts(grafana: FakeGrafana, tmp_path: Path) -> None:
    config = GrafanaConfig(enabled=True, url=grafana.url, token_file="unused", queue_size=2)
    annotator = Annotator(config, CollectorRegistry(), {})  # not started: nothing drains
    incident = PostIncident("north", "br-0001", 2, "emptied", 1.0, 1.0)
    annotator.submit([incident] * 5, dropped_before=1)
    assert annotator.dropped._value.get() == 4  # 3 beyond the queue + 1 lost upstream


def assert_post_1_emptied(annotation: dict[str, Any], time_ms: int) -> None:
    """``annotation`` marks post 1 of north/br-0001 emptied at ``time_ms``, on the floor board."""
    assert annotation["dashboardUID"] == "branchwatch-floor"
    assert annotation["tags"] == [
        "branchwatch",
        "region:north",
        "branch:br-0001",
        "post:1",
        "post-emptied",
    ]
    assert annotation["time"] == time_ms
