"""``branchwatch simulate``: publish realistic traffic for N simulated branches."""

from __future__ import annotations

import argparse
import logging
import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

from branchwatch.config import BrokerAddress, parse_broker_url
from branchwatch.contract.ids import is_site_id
from branchwatch.errors import ConfigError
from branchwatch.mqttconfig import BROKER_FLAG_HELP
from branchwatch.sim.generate import DEFAULT_REGIONS
from branchwatch.sim.profile import DEFAULT_SCENARIO, SCENARIOS
from branchwatch.sim.publisher import PROTOCOLS, SimPublisher, SimSettings

log = logging.getLogger(__name__)

MAX_BRANCHES = 100_000
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
MAX_SPEED = 100_000.0

EPILOG = """\
Each branch is one edge agent (edge-1) publishing to
bw/v1/{region}/{branch}/edge-1/events (QoS 1), with a retained status on
…/status and commands (replay, notify) on …/cmd. A simulated day runs 09:00-17:00
(then a short night and the next day); at --speed 10 a day takes 49 minutes.
With --day-hours the night lasts until the next date's opening (a day is 24
simulated hours). Event timestamps are wall-clock time: simulated durations are
divided by --speed. The scenarios are described in docs/simulator.md.

examples:
  branchwatch simulate --broker mqtt://127.0.0.1:1883 --branches 3 --speed 10
  branchwatch simulate --branches 200 --speed 60 --start-hour 11.5 --duration 600
  branchwatch simulate --seed 7 --seq-base 1   # the same events as last time
  branchwatch simulate --scenario realistic --branches 30 --day-hours 09:00-17:00 --speed 60
"""

N = TypeVar("N", int, float)


def bounded_number(kind: Callable[[str], N], low: N, high: N, what: str) -> Callable[[str], N]:
    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # NaN compares false: refused too
            raise argparse.ArgumentTypeError(f"{what} must be within {low}..{high}, not {text}")
        return value

    return parse


def _positive_float(what: str, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = bounded_number(float, 0.0, high, what)(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be greater than 0, not {text}")
        return value

    return parse


def hour_of_day(text: str) -> float:
    value = bounded_number(float, 0.0, 24.0, "the start hour")(text)
    if value >= 24.0:
        raise argparse.ArgumentTypeError("the start hour must be below 24")
    return value


def _hour(text: str) -> float:
    hours, _, minutes = text.strip().partition(":")
    try:
        value = int(hours) + (int(minutes) / 60 if minutes else 0.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an hour (e.g. 9 or 09:30)") from None
    if minutes and not 0 <= int(minutes) < 60:
        raise argparse.ArgumentTypeError(f"{text!r}: minutes must be within 0..59")
    return value


def day_hours(text: str) -> tuple[float, float]:
    """``09:00-17:00`` (or ``9-17``): the opening and closing hours of a real-length day."""
    opening, sep, closing = text.partition("-")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected OPEN-CLOSE, e.g. 09:00-17:00")
    hours = _hour(opening), _hour(closing)
    if not 0.0 <= hours[0] < hours[1] < 24.0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the opening must come before the closing, within one day"
        )
    return hours


def _broker(text: str) -> BrokerAddress:
    try:
        return parse_broker_url(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _regions(text: str) -> tuple[str, ...]:
    regions = tuple(r.strip() for r in text.split(",") if r.strip())
    if not regions:
        raise argparse.ArgumentTypeError("give at least one region, e.g. north,south")
    for region in regions:
        if not is_site_id(region):
            raise argparse.ArgumentTypeError(
                f"region {region!r} is not a valid id (lower-case letters, digits, _ and -)"
            )
    return regions


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_traffic_options(parser, default_speed=1.0)
    parser.add_argument(
        "--broker",
        type=_broker,
        action="append",
        metavar="URL",
        help=f"MQTT broker, {BROKER_FLAG_HELP} (default: {DEFAULT_BROKER})",
    )
    parser.add_argument(
        "--mqtt-protocol",
        choices=tuple(PROTOCOLS),
        default="5",
        help="MQTT protocol version (default: 5; amqtt speaks only 3.1.1)",
    )
    parser.add_argument(
        "--ca-file", metavar="PATH", help="CA certificates for mqtts:// (default: the system's)"
    )
    parser.add_argument(
        "--regions",
        type=_regions,
        default=DEFAULT_REGIONS,
        metavar="A,B,…",
        help=f"regions assigned round-robin (default: {','.join(DEFAULT_REGIONS)})",
    )
    parser.add_argument(
        "--start-hour",
        type=hour_of_day,
        default=9.0,
        metavar="H",
        help="simulated time of day to start at, e.g. 11.5 for 11:30 (default: 9, opening)",
    )
    parser.add_argument(
        "--day-hours",
        type=day_hours,
        metavar="OPEN-CLOSE",
        help="a real-length business day, e.g. 09:00-17:00: branches open and close at these "
        "hours and the night lasts until the next date's opening, so each simulated day "
        "falls on its own date (default: the scenario's 09:00-17:00 with a 5-minute night)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float("the duration", 10 * 365 * 86400.0),
        metavar="SECONDS",
        help="stop after this many (wall-clock) seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--seq-base",
        type=bounded_number(int, 0, 2**62, "the seq base"),
        default=1,
        metavar="N",
        help="first event seq of every agent (default: 1). A collector drops seqs it has "
        "seen: when restarting against one that saw an earlier run, start above it",
    )


def add_traffic_options(
    parser: argparse.ArgumentParser, default_speed: float, default_scenario: str = DEFAULT_SCENARIO
) -> None:
    """The options ``demo`` shares with ``simulate``."""
    parser.add_argument(
        "--branches",
        type=bounded_number(int, 1, MAX_BRANCHES, "the number of branches"),
        default=3,
        metavar="N",
        help="number of simulated branches, br-0001… (default: 3)",
    )
    parser.add_argument(
        "--speed",
        type=_positive_float("the speed", MAX_SPEED),
        default=default_speed,
        metavar="X",
        help=f"run X times faster than real time (default: {default_speed:g})",
    )
    parser.add_argument(
        "--seed",
        type=bounded_number(int, 0, 2**63, "the seed"),
        metavar="S",
        help="random seed: the same seed gives the same events (default: a random one, logged)",
    )
    parser.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        default=default_scenario,
        help="normal: every branch has an ordinary day; thin: lobbies staffed as the bank "
        "reports (fewer lobby managers, 18%% of branches with none); demo: the branches take "
        "turns at trouble within minutes (post 1 left empty, a cash rush, the printer out of "
        "paper); realistic: busy, ordinary and small branches whose waits pass 15 min at "
        "peaks (lunch, Mondays, the first business days of a month), self-service machines, "
        "flexible counters opened for queues, tellers rotating between counters with their "
        f"own ratings (default: {default_scenario})",
    )


def settings_from(args: argparse.Namespace) -> SimSettings:
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    brokers: list[BrokerAddress] = args.broker or [parse_broker_url(DEFAULT_BROKER)]
    if len({broker.tls for broker in brokers}) > 1:
        raise ConfigError("--broker: mqtt:// and mqtts:// cannot be mixed (one TLS setting)")
    return SimSettings(
        broker=brokers[0],
        fallback_brokers=tuple(brokers[1:]),
        branches=args.branches,
        regions=args.regions,
        speed=args.speed,
        seed=seed,
        start_hour=args.start_hour,
        mqtt_protocol=args.mqtt_protocol,
        seq_base=args.seq_base,
        scenario=args.scenario,
        day_hours=args.day_hours,
        ca_file=args.ca_file,
    )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` instead of interrupting (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    publisher = SimPublisher(settings)
    stop = threading.Event()
    with stop_on_signals(stop):
        publisher.run(stop, args.duration)
    return 0
