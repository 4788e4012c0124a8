"""``branchwatch demo``: the whole system on this machine with a live terminal view.

Starts, in order, an embedded broker (Mosquitto, else amqtt), the collector
and the simulator (both subprocesses in their own process groups), prints the
URLs, then shows the collector's view of every branch, in simulated time,
until Ctrl-C, SIGTERM or ``--duration``. Whatever happens, everything it
started is stopped (newest first: the simulator retains its agents'
``offline`` status before the broker goes) and its temporary directory
removed; killed outright (SIGKILL), its children get SIGTERM from the kernel.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Final, TextIO

from prometheus_client.parser import text_string_to_metric_families

from branchwatch.broker import EmbeddedBroker, free_port
from branchwatch.contract import metrics
from branchwatch.demo.clock import SimClock
from branchwatch.demo.processes import Child, DemoError, http_get, wait_ready
from branchwatch.demo.view import render
from branchwatch.sim.cli import add_traffic_options, bounded_number, hour_of_day, stop_on_signals
from branchwatch.sim.generate import branch_ids
from branchwatch.sim.profile import SCENARIOS
from branchwatch.thresholds import DEFAULT_THRESHOLDS, thresholds_from_tables
from collector.notices.config import NoticesConfig

READY_TIMEOUT: Final = 15.0
REFRESH_TTY: Final = 1.0
REFRESH_PLAIN: Final = 5.0
DEFAULT_SPEED: Final = 30.0
# Redraw in place: cursor home, each line cleared to its end, the rest of the screen cleared.
HOME: Final = "\x1b[H"
CLEAR_LINE: Final = "\x1b[K"
CLEAR_BELOW: Final = "\x1b[J"

EPILOG = """\
The view shows, per branch, in simulated time: open or closed; posts 1-7 with
how many staff are checked in (an empty required post 1 or 2 is marked EMPTY
with how long); queues per service, total waiting, the longest and the average
wait; counters open, paused, closed; tickets issued, served and lost;
satisfaction and evaluation rate; devices up and active faults; the alerts
(every threshold crossed, e.g. "cash oldest wait 21m04s > 20m warning"); the
floor notices the collector is sending (post told, when, acknowledged after
how long by which post) and how many so far. The demo's collector times its
notices in simulated time (every notice timing divided by --speed).
With the demo scenario the first branches are thin-staffed, busy and short of
printer paper: within a minute at 30x all three show. See docs/demo.md.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_traffic_options(parser, default_speed=DEFAULT_SPEED, default_scenario="demo")
    parser.add_argument(
        "--start-hour",
        type=hour_of_day,
        default=10.0,
        metavar="H",
        help="simulated time of day to start at (default: 10, a busy morning)",
    )
    parser.add_argument(
        "--http-port",
        type=bounded_number(int, 1, 65535, "the HTTP port"),
        metavar="PORT",
        help="the collector's HTTP port on 127.0.0.1 (default: a free one)",
    )
    parser.add_argument(
        "--duration",
        type=bounded_number(float, 1.0, 10 * 365 * 86400.0, "the duration"),
        metavar="SECONDS",
        help="stop everything after this many seconds and exit 0 (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--refresh",
        type=bounded_number(float, 0.1, 3600.0, "the refresh interval"),
        metavar="SECONDS",
        help=f"redraw the view this often (default: {REFRESH_TTY:g} s on a terminal, "
        f"else a snapshot every {REFRESH_PLAIN:g} s)",
    )
    parser.add_argument(
        "--no-view",
        action="store_true",
        help="print the URLs only, no live view (for scripts and tests)",
    )


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    workdir = Path(tempfile.mkdtemp(prefix="branchwatch-demo-"))
    keep_workdir = False
    out = sys.stdout
    try:
        with stop_on_signals(stop), ExitStack() as stack:
            demo = _Demo(args, workdir, stop, out)
            stack.callback(demo.shutdown)
            demo.start()
            demo.watch()
        return 0
    except DemoError:
        keep_workdir = True
        print(f"branchwatch demo: logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


class _Demo:
    def __init__(
        self, args: argparse.Namespace, workdir: Path, stop: threading.Event, out: TextIO
    ) -> None:
        self.args = args
        self.workdir = workdir
        self.stop = stop
        self.out = out
        self.seed = args.seed if args.seed is not None else random.randrange(1_000_000)
        self.port = args.http_port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self.deadline = None if args.duration is None else time.monotonic() + args.duration
        self.clock = SimClock(speed=args.speed, start_hour=args.start_hour)
        self.thresholds = DEFAULT_THRESHOLDS
        self.banner: list[str] = []

    # -- start and stop -------------------------------------------------------------------------

    def start(self) -> None:
        (self.workdir / "broker").mkdir()
        broker = self.broker = EmbeddedBroker(
            "auto", workdir=self.workdir / "broker", die_with_parent=True
        )
        with sigint_blocked():
            broker.start()
        config = self.workdir / "collector.toml"
        config.write_text(collector_toml(self.args.speed))
        self.thresholds = thresholds_from_tables(tomllib.loads(config.read_text()))
        collector = self._spawn(
            "collector",
            [
                *("collector", "run", "--broker", broker.url),
                *("--http", f"127.0.0.1:{self.port}"),
                *("--state-dir", str(self.workdir / "state")),
                *("--mqtt-protocol", broker.mqtt_protocol),
                *("--config", str(config)),
            ],
        )
        wait_ready(collector, f"{self.base}/readyz", READY_TIMEOUT, self.stop.is_set)
        if self.stop.is_set():
            return
        args = self.args
        simulator = self._spawn(
            "simulator",
            [
                *("simulate", "--broker", broker.url, "--branches", str(args.branches)),
                *("--speed", f"{args.speed:g}", "--seed", str(self.seed)),
                *("--start-hour", f"{args.start_hour:g}", "--scenario", args.scenario),
                *("--mqtt-protocol", broker.mqtt_protocol),
            ],
        )
        # The simulation starts a moment after this (the simulator's own start-up):
        # the header's clock is that much ahead, durations are exact.
        self.clock = SimClock(args.speed, time.time(), args.start_hour)
        self._print_banner(broker, collector, simulator)

    def _spawn(self, name: str, argv: list[str]) -> Child:
        child = Child(
            name, [sys.executable, "-m", "branchwatch", *argv], self.workdir / f"{name}.log"
        )
        self.children.append(child)
        return child

    def shutdown(self) -> None:
        """Newest first; each child gets SIGTERM, then SIGKILL after 5 s."""
        if self.children or self.broker:
            print("branchwatch demo: stopping…", file=self.out, flush=True)
        for child in reversed(self.children):
            child.stop()
        if self.broker is not None:
            self.broker.close()

    def _print_banner(self, broker: EmbeddedBroker, collector: Child, simulator: Child) -> None:
        args = self.args
        self.banner = [
            f"  metrics    {self.base}/metrics",
            f"  API        {self.base}/api/v1/branches",
            f"  broker     {broker.url}  ({broker.kind}, MQTT {broker.mqtt_protocol})",
            f"  logs       {self.workdir}/ (collector.log, simulator.log)",
        ]
        lines = [
            f"branchwatch demo: {args.branches} simulated branches at {args.speed:g}× "
            f"from {_clock(args.start_hour)}, scenario {args.scenario} (seed {self.seed})",
            *self.banner,
            f"  processes  broker pid {broker.pid}, collector pid {collector.pid}, "
            f"simulator pid {simulator.pid}",
            *self._stories(),
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), file=self.out, flush=True)

    def _stories(self) -> list[str]:
        """What each kind of branch of the scenario will show, by its first branch."""
        profiles = SCENARIOS[self.args.scenario]
        if len(profiles) < 2:
            return []
        ids = branch_ids(min(self.args.branches, len(profiles)))
        return [f"  {branch}    {p.story}" for (_, branch), p in zip(ids, profiles, strict=False)]

    # -- the view -------------------------------------------------------------------------------

    def watch(self) -> None:
        tty = self.out.isatty() and not self.args.no_view
        interval = self.args.refresh or (REFRESH_TTY if tty else REFRESH_PLAIN)
        while not self.stop.is_set():
            for child in self.children:
                if not child.alive():
                    raise DemoError(
                        f"the {child.name} exited with code {child.proc.returncode}; "
                        f"last lines of {child.log}:\n{child.tail()}"
                    )
            if not self.args.no_view:
                self._draw(tty)
            wait = interval
            if self.deadline is not None:
                wait = min(wait, self.deadline - time.monotonic())
                if wait <= 0:
                    return
            self.stop.wait(wait)

    def _draw(self, tty: bool) -> None:
        status, data = self._branches()
        now = data.get("now") if isinstance(data, dict) else None
        now = now if isinstance(now, float | int) else time.time()
        simulated = self.clock.clock_text(now) or "–"
        title = (
            f"branchwatch demo · simulated {simulated} · {self.args.speed:g}× · "
            f"{self.args.branches} branches · seed {self.seed}"
        )
        # On a terminal the banner's URLs stay on screen; a log has them once, at the top.
        header = [title, *self.banner] if tty else [title]
        lines = render(
            data, now=now, color=tty, header=header, clock=self.clock, thresholds=self.thresholds
        )
        if data is None:
            lines.insert(1, f"(the collector's API did not answer: HTTP {status or 'error'})")
        if tty:
            size = shutil.get_terminal_size()
            if len(lines) > size.lines - 1:
                hidden = len(lines) - (size.lines - 2)
                lines = [*lines[: size.lines - 2], f"… {hidden} more lines (enlarge the terminal)"]
            body = "".join(f"{line}{CLEAR_LINE}\n" for line in lines)
            self.out.write(f"{HOME}{body}{CLEAR_BELOW}")
        else:
            self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()

    def _branches(self) -> tuple[int, dict[str, Any] | None]:
        """The branch list, each branch replaced by its detail where that answers, with
        its notice totals from ``/metrics`` (``notice_totals``)."""
        status, data = _get_json(f"{self.base}/api/v1/branches")
        if not isinstance(data, dict) or not isinstance(data.get("branches"), list):
            return status, None
        totals = notice_totals(self.base)
        detailed = []
        for summary in data["branches"]:
            region, branch = summary.get("region"), summary.get("branch")
            _, detail = _get_json(f"{self.base}/api/v1/branches/{region}/{branch}")
            if isinstance(detail, dict) and isinstance(detail.get("branch"), dict):
                shown = detail["branch"]
            else:
                shown = summary
            detailed.append({**shown, "notice_totals": totals.get((region, branch), {})})
        return status, {**data, "branches": detailed}


def collector_toml(speed: float) -> str:
    """The demo collector's config: the floor notices' timings in simulated time.

    The collector times notices in wall seconds (event times are wall-clock), so a
    post empty for the default minute at ``speed``× has been empty ``60 / speed``
    wall seconds: every notice timing is the default divided by the speed.
    """
    defaults = NoticesConfig()
    timings = ("post_empty_seconds", "ack_timeout_seconds", "repeat_seconds")
    lines = [f"{name} = {getattr(defaults, name) / speed!r}" for name in timings]
    return "# written by branchwatch demo\n[notices]\n" + "\n".join(lines) + "\n"


def notice_totals(base: str) -> dict[tuple[str, str], dict[str, int]]:
    """(region, branch) -> outcome -> notices, over every kind, from the collector's
    ``branchwatch_notices_total`` (empty when /metrics does not answer)."""
    status, body = http_get(f"{base}/metrics")
    totals: dict[tuple[str, str], dict[str, int]] = {}
    if status != 200:
        return totals
    try:
        families = list(text_string_to_metric_families(body.decode()))
    except ValueError:
        return totals
    for family in families:
        for sample in family.samples:
            if sample.name != metrics.NOTICES.name:
                continue
            labels = sample.labels
            key = (labels.get("region", ""), labels.get("branch", ""))
            branch = totals.setdefault(key, {})
            outcome = labels.get("outcome", "")
            branch[outcome] = branch.get(outcome, 0) + int(sample.value)
    return totals


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Start a child with SIGINT blocked (the mask is inherited across exec).

    The embedded broker shares the demo's process group, so a Ctrl-C at the
    terminal would stop it at once, before the simulator can retain its
    agents' ``offline`` status: blocked, it waits for the demo's SIGTERM.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _get_json(url: str) -> tuple[int, Any]:
    """Status and decoded JSON body (None when it is not 200 or not JSON)."""
    status, body = http_get(url)
    if status != 200:
        return status, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def _clock(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
