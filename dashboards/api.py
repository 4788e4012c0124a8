"""The Grafana HTTP API as branchwatch uses it, through grafana-client.

Only what the push and the collector's annotations need: folders, data
sources, dashboards by uid, annotations. Every grafana-client or niquests
exception is converted here, where it enters, into :class:`GrafanaError`
with a message an operator can act on. The token is never part of one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import urlsplit

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from branchwatch.errors import BranchwatchError, ConfigError

DEFAULT_TIMEOUT: Final = 10.0
HTTP_FORBIDDEN: Final = 403
HTTP_NOT_FOUND: Final = 404
HTTP_PRECONDITION_FAILED: Final = 412


class GrafanaError(BranchwatchError):
    """Grafana could not be reached, refused the token, or refused a change."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GrafanaConfigError(GrafanaError, ConfigError):
    """A Grafana URL or token that cannot work: bad URL, token refused (401) or too weak (403)."""


def check_url(url: str) -> str:
    """A Grafana base URL (``http(s)://host[:port][/prefix]``), normalised for the client."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GrafanaConfigError(f"Grafana URL {url!r}: expected http(s)://HOST[:PORT][/PATH]")
    if parts.username is not None or parts.password is not None:
        raise GrafanaConfigError(
            f"Grafana URL for host {parts.hostname!r} carries credentials: "
            "use a service-account token in a token file instead"
        )
    if parts.query or parts.fragment:
        raise GrafanaConfigError(f"Grafana URL {url!r}: no query or fragment allowed")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise GrafanaConfigError(f"Grafana URL {url!r}: bad port") from exc
    path = parts.path.rstrip("/")
    # grafana-client appends "api" to the path prefix as is: a sub-path needs its slash.
    return f"{parts.scheme}://{parts.netloc}{path}/" if path else f"{parts.scheme}://{parts.netloc}"


@contextlib.contextmanager
def translated(url: str, action: str) -> Iterator[None]:
    """Turn grafana-client and niquests errors of ``action`` into :class:`GrafanaError`."""
    try:
        yield
    except GrafanaUnauthorizedError as exc:
        raise GrafanaConfigError(
            f"Grafana rejected the token (401) at {url} while {action}: check the token file "
            "(a service-account token of this Grafana organisation, not expired)",
            401,
        ) from exc
    except GrafanaClientError as exc:
        raise _client_error(url, action, exc) from exc
    except GrafanaServerError as exc:
        raise GrafanaError(
            f"Grafana failed ({exc.status_code}) at {url} while {action}: {_message(exc)}",
            exc.status_code,
        ) from exc
    except GrafanaTimeoutError as exc:
        raise GrafanaError(f"Grafana at {url} did not answer in time while {action}") from exc
    except (GrafanaException, niquests.exceptions.RequestException) as exc:
        raise GrafanaError(f"cannot reach Grafana at {url} while {action}: {_reason(exc)}") from exc


def _client_error(url: str, action: str, exc: GrafanaClientError) -> GrafanaError:
    status = exc.status_code
    if status == HTTP_FORBIDDEN:
        hint = (
            "the token's service account lacks the permission: it needs the Editor role, or "
            "Edit on the target folder (and Admin to create data sources)"
        )
    elif status == HTTP_PRECONDITION_FAILED:
        hint = (
            "a dashboard with the same title exists in that folder under another uid, "
            "or the version changed meanwhile: rename or delete it"
        )
    else:
        hint = _message(exc)
    refused = GrafanaConfigError if status == HTTP_FORBIDDEN else GrafanaError
    return refused(f"Grafana refused {action} ({status}) at {url}: {hint}", status)


def _message(exc: GrafanaException) -> str:
    response = exc.response
    if isinstance(response, dict) and "message" in response:
        return str(response["message"])
    return str(exc.message)


def _reason(exc: Exception) -> str:
    # niquests wraps the socket error; its innermost message is the useful one.
    text = str(exc) or type(exc).__name__
    return text.split("Caused by", 1)[-1].strip(" ()") if "Caused by" in text else text


class GrafanaConnection:
    """One Grafana (one organisation), authenticated by a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = check_url(url)
        self._api = GrafanaApi.from_url(self.url, credential=token, timeout=timeout)

    def _call(self, action: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        with translated(self.url, action):
            return method(*args, **kwargs)

    def _get_or_none(self, action: str, method: Any, *args: Any) -> Any:
        try:
            return self._call(action, method, *args)
        except GrafanaError as exc:
            if exc.status == HTTP_NOT_FOUND:
                return None
            raise

    # folders ---------------------------------------------------------------------------

    def folder(self, uid: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._get_or_none(
            f"reading folder {uid!r}", self._api.folder.get_folder, uid
        )
        return found

    def create_folder(self, uid: str, title: str) -> dict[str, Any]:
        created: dict[str, Any] = self._call(
            f"creating folder {title!r}", self._api.folder.create_folder, title, uid=uid
        )
        return created

    # data sources ----------------------------------------------------------------------

    def datasource(self, uid: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._get_or_none(
            f"reading data source {uid!r}", self._api.datasource.get_datasource_by_uid, uid
        )
        return found

    def create_datasource(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._call(
            f"creating data source {body['uid']!r}", self._api.datasource.create_datasource, body
        )
        return created

    def update_datasource(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        updated: dict[str, Any] = self._call(
            f"updating data source {uid!r}",
            self._api.datasource.update_datasource_by_uid,
            uid,
            body,
        )
        return updated

    # dashboards and annotations --------------------------------------------------------

    def save_dashboard(self, board: dict[str, Any], folder_uid: str) -> dict[str, Any]:
        """Create or overwrite the dashboard with ``board['uid']`` (POST /api/dashboards/db)."""
        body = {
            "dashboard": board,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "branchwatch grafana push",
        }
        saved: dict[str, Any] = self._call(
            f"saving dashboard {board['uid']!r}", self._api.dashboard.update_dashboard, body
        )
        return saved

    def annotate(
        self,
        dashboard_uid: str,
        time_ms: int,
        tags: list[str],
        text: str,
        end_ms: int | None = None,
    ) -> dict[str, Any]:
        """POST /api/annotations on one dashboard (all panels); a region with ``end_ms``."""
        created: dict[str, Any] = self._call(
            f"annotating dashboard {dashboard_uid!r}",
            self._api.annotations.add_annotation,
            dashboard_uid=dashboard_uid,
            time_from=time_ms,
            time_to=end_ms,
            tags=tags,
            text=text,
        )
        return created
