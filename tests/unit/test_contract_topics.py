"""Topic names of wire contract v1: ``{prefix}/v1/{region}/{branch}/{agent}/{kind}``."""

from __future__ import annotations

from typing import Final, get_args

import pytest

from branchwatch.contract import (
    DEFAULT_PREFIX,
    AgentTopic,
    parse_topic,
    subscription_filter,
    topic_for,
)
from branchwatch.contract.ids import is_site_id
from branchwatch.contract.topics import TOPIC_KINDS, TopicKind
from branchwatch.errors import ContractError

KINDS: Final[tuple[TopicKind, ...]] = get_args(TopicKind)


def test_topic_kinds_agree() -> None:
    assert set(KINDS) == set(TOPIC_KINDS) == {"events", "status", "cmd"}
    assert DEFAULT_PREFIX == "bw"


@pytest.mark.parametrize("kind", KINDS)
def test_topic_for_builds_the_documented_name(kind: TopicKind) -> None:
    assert topic_for("north", "b0042", "agent-1", kind) == f"bw/v1/north/b0042/agent-1/{kind}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("region", "branch", "agent"),
    [
        ("north", "b0042", "agent-1"),
        ("r", "b", "a"),
        ("0", "9", "z"),
        ("eu_west-2", "branch_0001", "floor-pc_2"),
        ("r" * 32, "b" * 32, "a" * 32),
    ],
)
def test_build_then_parse_round_trips(
    region: str, branch: str, agent: str, kind: TopicKind
) -> None:
    topic = topic_for(region, branch, agent, kind)
    parsed = parse_topic(topic)
    assert parsed == AgentTopic(region, branch, agent, kind)
    assert (parsed.region, parsed.branch, parsed.agent, parsed.kind) == (
        region,
        branch,
        agent,
        kind,
    )


def test_custom_prefix_round_trips_and_is_required_when_parsing() -> None:
    topic = topic_for("north", "b1", "a1", "events", prefix="acme")
    assert topic == "acme/v1/north/b1/a1/events"
    assert parse_topic(topic, prefix="acme") == AgentTopic("north", "b1", "a1", "events")
    with pytest.raises(ContractError) as info:
        parse_topic(topic)  # default prefix "bw"
    assert info.value.reason == "bad_topic"


@pytest.mark.parametrize(
    ("kind", "region", "expected"),
    [
        ("events", "+", "bw/v1/+/+/+/events"),
        ("status", "+", "bw/v1/+/+/+/status"),
        ("cmd", "+", "bw/v1/+/+/+/cmd"),
        ("+", "+", "bw/v1/+/+/+/+"),
        ("events", "north", "bw/v1/north/+/+/events"),
    ],
)
def test_subscription_filter(kind: TopicKind, region: str, expected: str) -> None:
    assert subscription_filter(kind, region=region) == expected


def test_subscription_filter_with_prefix() -> None:
    assert subscription_filter("status", prefix="acme") == "acme/v1/+/+/+/status"


BAD_TOPICS: Final[list[tuple[str, str]]] = [
    ("", "empty"),
    ("bw", "prefix_only"),
    ("bw/v1", "no_identity"),
    ("bw/v1/north/b1/events", "five_segments"),
    ("bw/v1/north/b1/a1/events/extra", "seven_segments"),
    ("bw/v1/north/b1/a1/events/", "trailing_slash"),
    ("/bw/v1/north/b1/a1/events", "leading_slash"),
    ("xx/v1/north/b1/a1/events", "wrong_prefix"),
    ("BW/v1/north/b1/a1/events", "prefix_case"),
    ("bw/v2/north/b1/a1/events", "version_v2"),
    ("bw/V1/north/b1/a1/events", "version_case"),
    ("bw/1/north/b1/a1/events", "version_no_v"),
    ("bw/v1/north/b1/a1/event", "kind_singular"),
    ("bw/v1/north/b1/a1/Events", "kind_case"),
    ("bw/v1/north/b1/a1/", "kind_empty"),
    ("bw/v1/north/b1/a1/commands", "kind_unknown"),
    ("bw/v1//b1/a1/events", "region_empty"),
    ("bw/v1/north//a1/events", "branch_empty"),
    ("bw/v1/north/b1//events", "agent_empty"),
    ("bw/v1/North/b1/a1/events", "region_upper_case"),
    ("bw/v1/north/B1/a1/events", "branch_upper_case"),
    ("bw/v1/north/b1/Agent/events", "agent_upper_case"),
    ("bw/v1/-north/b1/a1/events", "region_leading_dash"),
    ("bw/v1/_north/b1/a1/events", "region_leading_underscore"),
    ("bw/v1/north/b.1/a1/events", "branch_dot"),
    ("bw/v1/north/b1/a 1/events", "agent_space"),
    ("bw/v1/north/b1/" + "a" * 33 + "/events", "agent_33_chars"),
    ("bw/v1/+/b1/a1/events", "wildcard_plus"),
    ("bw/v1/north/b1/#/events", "wildcard_hash"),
    ("bw/v1/north/b1/a1/#", "wildcard_kind"),
    ("bw/v1/north\n/b1/a1/events", "region_trailing_newline"),
    ("bw/v1/north/b1/a1\n/events", "agent_trailing_newline"),
    ("bw/v1/north/b1/a1/events\n", "kind_trailing_newline"),
    ("bw/v1/nörth/b1/a1/events", "region_non_ascii"),
    ("bw/v1/north/b1/a1\x00/events", "nul"),
]


@pytest.mark.parametrize("topic", [pytest.param(t, id=i) for t, i in BAD_TOPICS])
def test_malformed_topics_are_bad_topic(topic: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == "bad_topic"
    assert info.value.detail


BAD_IDS: Final[list[tuple[str, str]]] = [
    ("", "empty"),
    ("North", "upper_case"),
    ("-north", "leading_dash"),
    ("_north", "leading_underscore"),
    ("no.rth", "dot"),
    ("no/rth", "slash_would_add_a_level"),
    ("+", "wildcard_plus"),
    ("#", "wildcard_hash"),
    ("n" * 33, "33_chars"),
    ("north\n", "trailing_newline"),
    ("nor th", "space"),
    ("nörth", "non_ascii"),
]


@pytest.mark.parametrize("position", ["region", "branch", "agent"])
@pytest.mark.parametrize("bad", [pytest.param(b, id=i) for b, i in BAD_IDS])
def test_topic_for_rejects_bad_ids(position: str, bad: str) -> None:
    ids = {"region": "north", "branch": "b1", "agent": "a1"} | {position: bad}
    with pytest.raises(ContractError) as info:
        topic_for(ids["region"], ids["branch"], ids["agent"], "events")
    assert info.value.reason == "bad_identifier"
    assert position in info.value.detail
    assert not is_site_id(bad)


@pytest.mark.parametrize("good", ["a", "0", "a-b_c", "9" * 32, "b0042"])
def test_is_site_id_accepts(good: str) -> None:
    assert is_site_id(good)
