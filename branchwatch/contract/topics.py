"""MQTT topic names of wire contract v1: ``{prefix}/v1/{region}/{branch}/{agent}/{kind}``."""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

from branchwatch.contract.ids import is_site_id
from branchwatch.errors import ContractError

DEFAULT_PREFIX: Final = "bw"
CONTRACT_VERSION: Final = "v1"
TopicKind = Literal["events", "status", "cmd"]
TOPIC_KINDS: Final[frozenset[str]] = frozenset(("events", "status", "cmd"))


class AgentTopic(NamedTuple):
    """Who a message is from (or to): the broker's ACL pins an agent to its subtree."""

    region: str
    branch: str
    agent: str
    kind: TopicKind


def topic_for(
    region: str, branch: str, agent: str, kind: TopicKind, prefix: str = DEFAULT_PREFIX
) -> str:
    for name, value in (("region", region), ("branch", branch), ("agent", agent)):
        if not is_site_id(value):
            raise ContractError("bad_identifier", f"{name} {value!r} is not a valid id")
    return f"{prefix}/{CONTRACT_VERSION}/{region}/{branch}/{agent}/{kind}"


def subscription_filter(
    kind: TopicKind | Literal["+"], region: str = "+", prefix: str = DEFAULT_PREFIX
) -> str:
    """Topic filter for one kind of message, optionally one region (one collector per region)."""
    return f"{prefix}/{CONTRACT_VERSION}/{region}/+/+/{kind}"


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> AgentTopic:
    """Split and validate a topic; raise :class:`ContractError` (``bad_topic``) otherwise."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != prefix or parts[1] != CONTRACT_VERSION:
        raise ContractError("bad_topic", f"not a {prefix}/{CONTRACT_VERSION} agent topic")
    _, _, region, branch, agent, kind = parts
    if kind not in TOPIC_KINDS:
        raise ContractError("bad_topic", f"unknown topic kind {kind!r}")
    if not (is_site_id(region) and is_site_id(branch) and is_site_id(agent)):
        raise ContractError("bad_topic", "region, branch or agent is not a valid id")
    return AgentTopic(region, branch, agent, kind)  # type: ignore[arg-type]
