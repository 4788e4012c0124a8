"""``branchwatch grafana build|push``: the boards as JSON files, or into a running Grafana."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

from branchwatch.config import read_secret
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds, load_thresholds
from dashboards.api import DEFAULT_TIMEOUT, GrafanaConnection
from dashboards.build import build_all, write_all
from dashboards.push import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID, push

# Relative to where the command runs, never to the installed package.
DEFAULT_OUT: Final = Path("grafana-dashboards")
CONFIG_HELP: Final = (
    "the collector's config (TOML): colour the boards at its [thresholds] "
    "(default: the built-in thresholds)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build",
        help="write the boards' JSON (what file provisioning loads)",
        description="Build the three boards and write one JSON file per board.",
    )
    build.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory for the JSON files, created if needed (default: ./{DEFAULT_OUT} "
        "in the current directory)",
    )
    build.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    build.set_defaults(_grafana=_build)

    push_parser = sub.add_parser(
        "push",
        help="create the folder and push the boards by uid (idempotent)",
        description=(
            "Create the folder (uid 'branchwatch') and save the three boards by their stable "
            "uids with overwrite, so pushing again updates them. With --datasource-url, also "
            "create or update the Prometheus data source 'branchwatch-prometheus' and start "
            "the boards on it."
        ),
    )
    push_parser.add_argument("--url", required=True, help="Grafana base URL, http(s)://HOST:PORT")
    push_parser.add_argument(
        "--token-file",
        required=True,
        metavar="FILE",
        help="file holding a Grafana service-account token (Editor; Admin for --datasource-url)",
    )
    push_parser.add_argument(
        "--folder", default=FOLDER_TITLE, help=f"folder title (default: {FOLDER_TITLE})"
    )
    push_parser.add_argument(
        "--datasource-url",
        metavar="PROM_URL",
        help="Prometheus URL as Grafana's server reaches it; create/update the data source",
    )
    push_parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    push_parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    push_parser.set_defaults(_grafana=_push)


def run(args: argparse.Namespace) -> int:
    code: int = args._grafana(args)
    return code


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return load_thresholds(args.config) if args.config else DEFAULT_THRESHOLDS


def _build(args: argparse.Namespace) -> int:
    for path in write_all(args.out, _thresholds(args)):
        print(path)
    return 0


def _push(args: argparse.Namespace) -> int:
    boards = build_all(_thresholds(args))
    token = read_secret(args.token_file, "Grafana token")
    grafana = GrafanaConnection(args.url, token, timeout=args.timeout)
    report = push(grafana, args.folder, FOLDER_UID, args.datasource_url, boards)
    folder = "created" if report.folder_created else "exists"
    datasource = f"; data source {DATASOURCE_UID}: {report.datasource}" if report.datasource else ""
    print(f"folder {report.folder_uid}: {folder}{datasource}")
    for board in report.boards:
        version = "?" if board.version is None else board.version
        print(f"{board.uid}: version {version} {board.url}")
    return 0
