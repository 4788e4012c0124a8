"""branchwatch: real-time operations monitor for bank branch floors.

This package holds what the agent and the collector share: the MQTT wire
contract (:mod:`branchwatch.contract`), config loading and the CLI.
"""

__version__ = "0.1.0"
