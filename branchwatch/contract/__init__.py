"""Wire contract v1 (docs/contract.md): topics, events, status, commands and their codec."""

from branchwatch.contract.codec import (
    REJECT_REASONS,
    decode_command,
    decode_events,
    decode_status,
    encode,
)
from branchwatch.contract.events import *  # noqa: F403 - the event types are the contract
from branchwatch.contract.events import EVENT_TYPES, AnyEvent, Event
from branchwatch.contract.messages import (
    AnyCommand,
    Command,
    DeviceStatus,
    Notify,
    Replay,
    SpoolStatus,
    Status,
)
from branchwatch.contract.topics import (
    DEFAULT_PREFIX,
    AgentTopic,
    parse_topic,
    subscription_filter,
    topic_for,
)

__all__ = [
    "DEFAULT_PREFIX",
    "EVENT_TYPES",
    "REJECT_REASONS",
    "AgentTopic",
    "AnyCommand",
    "AnyEvent",
    "Command",
    "DeviceStatus",
    "Event",
    "Notify",
    "Replay",
    "SpoolStatus",
    "Status",
    "decode_command",
    "decode_events",
    "decode_status",
    "encode",
    "parse_topic",
    "subscription_filter",
    "topic_for",
]
