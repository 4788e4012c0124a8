"""``branchwatch demo``: the whole system on this machine with a live terminal view."""

from __future__ import annotations

import argparse

from branchwatch.errors import BranchwatchError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--branches", type=int, default=3, metavar="N")


def run(args: argparse.Namespace) -> int:
    raise BranchwatchError("the demo is being written")
