"""Emulate one branch device, the far end of its serial line, for tests and demos.

Serves PROTOCOL on a new pty (--pty) or a TCP port (--tcp) and prints the
endpoint to put in the agent's device ``url``. Once the agent is there (after
--delay: a serial port flushes its input when opened), plays the --script
file: one item per line, ``sleep SECONDS`` for a pause, ``hex 02ff...`` for
raw bytes, ``# ...`` for a comment, anything else is what the device sends
(format below). Then stays up printing what the agent writes to the device
(floor notices) until Ctrl-C.

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
    args = parser.parse_args(argv)
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
        if args.tcp is not None:
            await emulator.wait_client(timeout=3600)
        # A serial port flushes its input when opened: give the agent time to open it.
        await asyncio.sleep(args.delay)
        await emulator.play(script)

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
