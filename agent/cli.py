"""``branchwatch agent``: run an edge agent on a branch PC, or check its setup.

    branchwatch agent run --config /etc/branchwatch/agent.toml
    branchwatch agent doctor --config /etc/branchwatch/agent.toml

``run`` spools every device event (SQLite), publishes it to the broker and
answers the collector's replay and notice commands; SIGTERM/SIGINT: offline
status and exit 0. ``doctor`` checks config, devices, broker, spool directory
and clock, prints a pass/fail table and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent.errors import AgentError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2] if __doc__ else None
    sub = parser.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run the agent (foreground; systemd runs this)")
    run.add_argument("--config", required=True, metavar="FILE", help="agent TOML config")
    doctor = sub.add_parser("doctor", help="check config, devices, broker, spool and clock")
    doctor.add_argument("--config", required=True, metavar="FILE", help="agent TOML config")
    doctor.add_argument(
        "--device-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to listen to each device (default: 5)",
    )


def run(args: argparse.Namespace) -> int:
    if args.agent_command == "doctor":
        from agent.doctor import run_doctor  # noqa: PLC0415 - doctor-only imports

        return int(run_doctor(args.config, args.device_seconds))
    from agent.app import run_agent  # noqa: PLC0415
    from agent.config import load_config  # noqa: PLC0415

    config = load_config(args.config)  # ConfigError: exit 2 with the key named
    try:
        asyncio.run(run_agent(config))
    except AgentError as exc:
        print(f"branchwatch agent: error: {exc}", file=sys.stderr)
        return 1
    return 0
