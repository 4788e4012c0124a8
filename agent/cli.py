"""``branchwatch agent``: run an edge agent on a branch PC, or check its setup.

    branchwatch agent run --config /etc/branchwatch/agent.toml
    branchwatch agent doctor --config /etc/branchwatch/agent.toml

Errors are raised, never turned into an exit status here: ``branchwatch.cli``
maps them once (a ConfigError is 2, any other error 1).
"""

from __future__ import annotations

import argparse
import asyncio

from branchwatch.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from branchwatch.mqttconfig import BROKER_FLAG_HELP

CONFIG_HELP = "the agent's TOML config (sample: deploy/agent.toml)"

RUN_DESCRIPTION = f"""\
Run the edge agent in the foreground (systemd runs this): read the config
FILE, open every [[devices]] entry, store each device event in the spool
(SQLite, [spool] path) before anything else, publish it to the broker
([mqtt]) and answer the collector's replay and notice commands. Events wait
in the spool while the broker is away and go out in order when it is back.

The config is checked whole before the broker is contacted: an unknown key,
a bad value, an unknown device protocol or option stops the agent at once.

exit status:
  {EXIT_OK}  stopped by SIGTERM or SIGINT (offline status published first)
  {EXIT_FAILED}  failed while running (e.g. the spool's disk): systemd restarts it
  {EXIT_CONFIG}  bad config or command line: fix it, a restart will not help
"""

DOCTOR_DESCRIPTION = f"""\
Check whether the agent described by the config FILE can work on this
machine, and print a pass/fail table: the clock, the spool directory (run it
as the service user), each device (opened for --device-seconds: does its
link come up, do its frames parse), and the broker (TCP/TLS, credentials,
then a QoS 1 probe on the agent's own doctor topic, which a collector never
reads). It never touches the running agent's spool or session.

exit status:
  {EXIT_OK}  every check passed: this agent is ready to run
  {EXIT_FAILED}  a check failed (the table says which and why)
  {EXIT_CONFIG}  bad config or command line (nothing was checked)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    actions = {
        "run": ("run the agent (foreground; systemd runs this)", RUN_DESCRIPTION),
        "doctor": ("check config, devices, broker, spool and clock", DOCTOR_DESCRIPTION),
    }
    for name, (help_text, description) in actions.items():
        action = sub.add_parser(
            name,
            help=help_text,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        action.add_argument("--config", required=True, metavar="FILE", help=CONFIG_HELP)
        action.add_argument(
            "--broker",
            action="append",
            metavar="URL",
            help=f"instead of [mqtt] broker: {BROKER_FLAG_HELP}",
        )
    doctor = sub.choices["doctor"]
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

        return run_doctor(args.config, args.device_seconds, brokers=args.broker or ())
    from agent.app import run_agent  # noqa: PLC0415
    from agent.config import load_config  # noqa: PLC0415

    asyncio.run(run_agent(load_config(args.config, brokers=args.broker or ())))
    return EXIT_OK
