"""Device emulators: each serial protocol spoken over a pty or a TCP port, so the
adapters are tested without hardware (docs/devices/emulators.md)."""

from agent.emulators.base import Emulator
from agent.emulators.script import encode_item, parse_script_line

__all__ = ["Emulator", "encode_item", "parse_script_line"]
