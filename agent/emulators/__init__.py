"""Device emulators: each serial protocol spoken over a pty or a TCP port (DESIGN §10)."""

from agent.emulators.base import Emulator
from agent.emulators.script import encode_item, parse_script_line

__all__ = ["Emulator", "encode_item", "parse_script_line"]
