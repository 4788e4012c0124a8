"""The ``branchwatch`` command: one entry point, subcommands from a table.

Each subcommand lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; this file only wires them, so a new program never
touches the others' code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final, Protocol, cast

from branchwatch import __version__
from branchwatch.errors import BranchwatchError

# name -> (module, one-line help). Modules are imported only to build parsers.
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "collector": ("collector.cli", "run the collector: MQTT in, Prometheus metrics and JSON out"),
    "simulate": ("branchwatch.sim.cli", "publish realistic traffic for N simulated branches"),
    "demo": ("branchwatch.demo.cli", "run the whole system locally with a live terminal view"),
    "agent": ("agent.cli", "run an edge agent on a branch PC, or check its setup"),
    "grafana": ("dashboards.cli", "build and push the Grafana boards"),
}


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branchwatch",
        description="Real-time operations monitor for bank branch floors.",
        epilog="Run `branchwatch COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"branchwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity (default: info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = cast(CommandModule, importlib.import_module(module_name))
        except ImportError as exc:
            # One broken install (a missing optional dependency) must not take the
            # other commands down with it: say what is missing when it is used.
            command.set_defaults(_run=_unavailable(name, exc))
            continue
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise BranchwatchError(f"the {name} command cannot load: {exc}")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args))
    except BranchwatchError as exc:
        print(f"branchwatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
