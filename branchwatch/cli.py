"""The ``branchwatch`` command: one entry point, subcommands from a table.

Each subcommand lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; this file only wires them, so a new program never
touches the others' code. It is also the one place where errors become exit
statuses (:data:`EXIT_STATUS_HELP`): subcommands raise, they never choose a status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final, Protocol, cast

from branchwatch import __version__
from branchwatch.errors import BranchwatchError, ConfigError

# name -> (module, one-line help). Only the invoked command's module is imported: a
# command starts without the others' dependencies (the Grafana client, the web stack).
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "collector": ("collector.cli", "run the collector: MQTT in, Prometheus metrics and JSON out"),
    "simulate": ("branchwatch.sim.cli", "publish realistic traffic for N simulated branches"),
    "demo": ("branchwatch.demo.cli", "run the whole system locally with a live terminal view"),
    "agent": ("agent.cli", "run an edge agent on a branch PC, or check its setup"),
    "grafana": ("dashboards.cli", "build and push the Grafana boards"),
    "report": ("branchwatch.report.cli", "write a period's branch and teller rankings"),
}


EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # any other BranchwatchError: it failed while running
EXIT_CONFIG: Final = 2  # a ConfigError, or argparse's usage error: fix it, do not restart
EXIT_INTERRUPTED: Final = 130  # Ctrl-C (128 + SIGINT), as shells report it

EXIT_STATUS_HELP: Final = f"""\
exit status:
  {EXIT_OK}    done (a service stopped by SIGTERM/SIGINT exits 0 too)
  {EXIT_FAILED}    failed while running (disk, port, a failed `agent doctor` check): may pass later
  {EXIT_CONFIG}    bad command line or configuration: fix it first, a restart will not help
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the options of that one command alone."""
    parser = argparse.ArgumentParser(
        prog="branchwatch",
        description="Real-time operations monitor for bank branch floors.",
        epilog="Run `branchwatch COMMAND --help` for the options of one command.\n\n"
        + EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        if only is not None and name != only:
            continue
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
    words = list(sys.argv[1:] if argv is None else argv)
    # The first command name on the line is the command (no global option takes one as value).
    invoked = next((word for word in words if word in COMMANDS), "")
    args = build_parser(only=invoked).parse_args(words)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args))
    except ConfigError as exc:
        # One line, as argparse reports a usage error: the operator reads it whole.
        print(f"branchwatch: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_CONFIG
    except BranchwatchError as exc:
        # May carry a child's log tail on the following lines (the demo, the broker).
        print(f"branchwatch: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
