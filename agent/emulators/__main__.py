"""``python -m agent.emulators PROTOCOL (--pty [--link PATH] | --tcp PORT) [--script FILE]``.

Prints the endpoint to put in the agent's device ``url``, plays the script
(see :func:`agent.emulators.script.parse_script_line`) once the agent is
there, then stays up printing what the agent writes (floor notices) until
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

from agent.emulators.base import Emulator
from agent.emulators.script import TEXT_ENCODERS, Item, parse_script_line


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m agent.emulators", description=__doc__)
    parser.add_argument("protocol", choices=sorted(TEXT_ENCODERS))
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pty")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on a TCP port (0: any)")
    parser.add_argument("--link", metavar="PATH", help="with --pty: a stable symlink to it")
    parser.add_argument("--script", type=Path, help="items to send, one per line")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before the script")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    script: list[Item] = []
    if args.script is not None:
        lines = args.script.read_text(encoding="utf-8").splitlines()
        script = [item for line in lines if (item := parse_script_line(line)) is not None]
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
