"""``branchwatch collector run``: flags over a strict TOML file over defaults.

Errors are raised, never turned into an exit status here: ``branchwatch.cli``
maps them once (a ConfigError is 2, any other error 1).
"""

from __future__ import annotations

import argparse
import getpass
import sys

import msgspec

from branchwatch.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from branchwatch.errors import ConfigError
from branchwatch.mqttconfig import BROKER_FLAG_HELP, broker_setting
from collector.config import CollectorConfig, load_collector_config
from collector.httpsecurity import HASH_COST, hash_password

RUN_HELP = f"""\
Subscribe to every agent's events and status (QoS 1, persistent session),
keep the live floor state of every branch, and serve it:

  /metrics                         Prometheus exposition (docs/run-collector.md)
  /metrics?shard=I&shards=N        the branches of shard I of N only (a region as N
                                   targets, N dividing 64; the collector's own in 0)
  /healthz, /readyz                liveness; readiness (200 once subscribed)
  /api/v1/branches                 JSON summary of every branch
  /api/v1/branches/REGION/BRANCH   JSON detail of one branch

State is snapshotted to --state-dir and restored on start; agents are then
asked to replay what the snapshot missed.

The config and flags are checked whole before the broker is contacted.

exit status:
  {EXIT_OK}  stopped by SIGTERM or SIGINT (after a last snapshot)
  {EXIT_FAILED}  failed while running (e.g. the HTTP port is taken): systemd restarts it
  {EXIT_CONFIG}  bad config or flag (unknown key, bad value, unreadable file): fix it first
"""


HASH_HELP = f"""\
Read a password (typed without echo at a terminal, else the first line of
standard input) and print its bcrypt hash for the collector's
[http.basic_auth_users] table; Prometheus' own web config takes the same.

  echo -n 's3cret' | branchwatch collector hash-password

exit status:
  {EXIT_OK}  the hash is on standard output
  {EXIT_CONFIG}  no password, or one longer than bcrypt's 72 bytes
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="collector_command", metavar="ACTION", required=True)
    run = sub.add_parser(
        "run",
        help="run the collector",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", metavar="FILE", help="strict TOML config (deploy/collector.toml)")
    run.add_argument("--broker", action="append", metavar="URL", help=BROKER_FLAG_HELP)
    run.add_argument(
        "--http", metavar="HOST:PORT", help="listen address for HTTP (default 0.0.0.0:9108)"
    )
    run.add_argument(
        "--state-dir", metavar="DIR", help="where snapshots live (default: no snapshots)"
    )
    run.add_argument(
        "--mqtt-protocol", choices=("5", "3.1.1"), help="MQTT protocol version (default 5)"
    )
    run.add_argument("--client-id", metavar="ID", help="stable MQTT client id of this collector")
    run.add_argument(
        "--region",
        action="append",
        metavar="REGION",
        help="subscribe to this region only (repeatable; default: all regions)",
    )
    hasher = sub.add_parser(
        "hash-password",
        help="print the bcrypt hash of a password for http.basic_auth_users",
        description=HASH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hasher.add_argument(
        "--cost",
        type=int,
        default=HASH_COST,
        choices=range(4, 32),
        metavar="N",
        help=f"bcrypt cost, 4-31: each check takes 2^N rounds (default {HASH_COST})",
    )


def load_config(args: argparse.Namespace) -> CollectorConfig:
    config = load_collector_config(args.config) if args.config else CollectorConfig()
    mqtt = config.mqtt
    overrides = {
        "broker": broker_setting(args.broker) if args.broker else None,
        "protocol": args.mqtt_protocol,
        "client_id": args.client_id,
        "regions": tuple(args.region) if args.region else None,
    }
    mqtt = msgspec.structs.replace(mqtt, **{k: v for k, v in overrides.items() if v is not None})
    http = config.http
    if args.http:
        http = msgspec.structs.replace(http, listen=args.http)
    state = config.state
    if args.state_dir:
        state = msgspec.structs.replace(state, dir=args.state_dir)
    config = msgspec.structs.replace(config, mqtt=mqtt, http=http, state=state)
    config.validate()
    return config


def print_password_hash(cost: int) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError("no password on standard input")
    print(hash_password(password.encode(), cost))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.collector_command == "hash-password":
        return print_password_hash(args.cost)
    # The server's imports (prometheus_client, the Grafana client) wait for a valid config.
    from collector.app import Collector, disable_created_series  # noqa: PLC0415
    from collector.ingest import tune_gc  # noqa: PLC0415
    from collector.memory import HeapTrimmer  # noqa: PLC0415

    config = load_config(args)
    disable_created_series()
    tune_gc()
    trimmer = HeapTrimmer().start()  # freed malloc memory back to the system
    try:
        return Collector(config).run()
    finally:
        trimmer.stop()
