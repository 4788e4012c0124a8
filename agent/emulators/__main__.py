"""Emulate one branch device, the far end of its serial line, for tests and demos.

Serves PROTOCOL on a new pty (--pty) or a TCP port (--tcp) and prints the
endpoint to put in the agent's device ``url``. Each time the agent is there
(a TCP client connects, or something opens the pty) it waits --delay (a
serial port flushes its input when opened) and plays the --script file to
it from the start, --repeat times or, with --loop, until it leaves: one item
per line, ``sleep SECONDS`` for a pause, ``hex 02ff...`` for raw bytes,
``# ...`` for a comment, anything else is what the device sends (format
below). So a doctor run that connects first does not use the script up.
Stays up printing what the agent writes to the device (floor notices) until
Ctrl-C.

A script that cannot be read or parsed is refused before anything starts
(exit status 2, like any other bad argument).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

from agent.emulators import script as script_format
from agent.emulators.base import Emulator
from agent.emulators.script import TEXT_ENCODERS, Item, encode_item, parse_script_line


def plain(docstring: str) -> str:
    """A docstring as --help text: ``literal`` quoted, :role:`target` markup dropped."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", docstring)
    return re.sub(r"``([^`]+)``", r'"\1"', text)


def load_script(path: Path, protocol: str) -> list[Item]:
    """The items of a script file; ValueError naming the line that ``play`` would refuse."""
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            item = parse_script_line(line)
            if isinstance(item, bytes | str):
                encode_item(protocol, item)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        if item is not None:
            items.append(item)
    return items


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agent.emulators",
        description=plain(__doc__ or ""),
        epilog="script format:\n" + plain(script_format.__doc__ or "").split("\n\n", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("protocol", choices=sorted(TEXT_ENCODERS))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pty")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on a TCP port (0: any)")
    parser.add_argument("--link", metavar="PATH", help="with --pty: a stable symlink to it")
    parser.add_argument("--script", type=Path, metavar="FILE", help="items to send, one per line")
    parser.add_argument(
        "--delay", type=float, default=1.0, metavar="SECONDS", help="before the script (default: 1)"
    )
    times = parser.add_mutually_exclusive_group()
    times.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="play the script N times (default: 1)"
    )
    times.add_argument("--loop", action="store_true", help="play the script until the peer leaves")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    args.items = []
    if args.script is not None:
        try:
            args.items = load_script(args.script, args.protocol)
        except OSError as exc:
            parser.error(f"--script: cannot read {args.script}: {exc.strerror or exc}")
        except ValueError as exc:
            parser.error(f"--script {args.script}: {exc}")
    return args


async def _main(args: argparse.Namespace) -> None:
    script: list[Item] = args.items
    if args.pty:
        emulator = await Emulator.pty(args.protocol, args.link)
    else:
        emulator = await Emulator.tcp(args.protocol, port=args.tcp)
    async with emulator:
        print(emulator.endpoint, flush=True)
        emulator.serve(script, args.delay, None if args.loop else args.repeat)

        def more_than(count: int) -> Callable[[], bool]:
            return lambda: len(emulator.lines()) > count

        shown = 0
        while True:
            await emulator.wait_for(more_than(shown), timeout=3600)
            for line in emulator.lines()[shown:]:
                print(line.decode("utf-8", "replace"), flush=True)
            shown = len(emulator.lines())


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
