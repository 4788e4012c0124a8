"""Floor incidents the store notes for Grafana: required posts emptied and filled while open."""

from __future__ import annotations

from typing import Any

import pytest

from branchwatch.contract import events as ev
from branchwatch.errors import ConfigError
from collector.config import CollectorConfig, GrafanaConfig
from collector.floor.config import FloorConfig
from collector.floor.posts import PostIncident
from collector.grafana import duration_text, tags_for, text_for
from collector.store import MAX_INCIDENTS, ApplyResult, Store
from dashboards import floor
from tests.floorfeed import FloorFeed


class Feed(FloorFeed):
    """Every event accepted (asserted)."""

    def __init__(self, record: bool = True, config: FloorConfig | None = None) -> None:
        super().__init__(Store(config or FloorConfig()), region="north", branch="br-1")
        self.store.record_incidents = record

    def __call__(
        self, cls: type[ev.Event], ts: float, seq: int | None = None, **fields: Any
    ) -> ApplyResult:
        result = super().__call__(cls, ts, seq, **fields)
        assert not result.rejected, result
        return result


def opened_feed() -> Feed:
    """A feed whose branch opened at ts 1000."""
    feed = Feed()
    feed(ev.BranchOpened, 1000)
    return feed


def test_emptied_and_filled_again_while_open() -> None:
    feed = opened_feed()
    feed(ev.PositionStaffed, 1010, position=1, staff="s1")
    feed(ev.PositionVacated, 1100, position=1, staff="s1")
    feed(ev.PositionStaffed, 1400, position=1, staff="s2")
    assert feed.store.drain_incidents() == [
        PostIncident("north", "br-1", 1, "filled", 1010.0, 1000.0),  # empty since opening
        PostIncident("north", "br-1", 1, "emptied", 1100.0, 1100.0),
        PostIncident("north", "br-1", 1, "filled", 1400.0, 1100.0),
    ]
    assert feed.store.drain_incidents() == []  # drained once


def test_a_second_staff_member_or_a_partial_vacate_is_no_incident() -> None:
    feed = opened_feed()
    feed(ev.PositionStaffed, 1010, position=2, staff="s1")
    feed(ev.PositionStaffed, 1020, position=2, staff="s2")
    feed(ev.PositionVacated, 1030, position=2, staff="s1")
    assert [i.kind for i in feed.store.drain_incidents()] == ["filled"]


def test_closed_branches_and_other_posts_make_no_incidents() -> None:
    feed = Feed()
    feed(ev.PositionStaffed, 900, position=1, staff="s1")  # before opening
    feed(ev.PositionVacated, 950, position=1)
    feed(ev.BranchOpened, 1000)
    feed(ev.PositionStaffed, 1010, position=5, staff="t1")  # not a required post
    feed(ev.PositionVacated, 1020, position=5)
    feed(ev.BranchClosed, 2000)
    feed(ev.PositionStaffed, 2010, position=1, staff="s1")
    assert feed.store.drain_incidents() == []


def test_an_older_event_that_changes_nothing_is_no_incident() -> None:
    feed = opened_feed()
    feed(ev.PositionStaffed, 1100, position=1, staff="s1")
    feed.store.drain_incidents()
    feed(ev.PositionVacated, 1050, position=1)  # older than the last change: ignored
    assert feed.store.drain_incidents() == []


def test_nothing_is_noted_unless_asked_for() -> None:
    feed = Feed(record=False)
    feed(ev.BranchOpened, 1000)
    feed(ev.PositionStaffed, 1010, position=1, staff="s1")
    feed(ev.PositionVacated, 1020, position=1)
    assert feed.store.drain_incidents() == []


def test_the_incident_list_is_bounded_and_counts_what_it_drops() -> None:
    feed = opened_feed()
    for i in range(MAX_INCIDENTS + 10):
        cls = ev.PositionStaffed if i % 2 == 0 else ev.PositionVacated
        feed(cls, 1001 + i, position=1, staff="s1")
    drained = feed.store.drain_incidents()
    assert len(drained) == MAX_INCIDENTS
    assert feed.store.incidents_dropped == 10
    assert drained[-1].ts == 1000 + MAX_INCIDENTS + 10  # the newest are kept


def test_annotation_text_and_tags() -> None:
    filled = PostIncident("north", "br-1", 2, "filled", 4000.0, 400.0)
    assert tags_for(filled) == [
        "branchwatch",
        "region:north",
        "branch:br-1",
        "post:2",
        "post-filled",
    ]
    assert text_for(filled, {2: "self-service machines"}) == (
        "Post 2 (self-service machines) filled at north/br-1 after 1 h 00 min empty"
    )
    assert text_for(PostIncident("n", "b", 7, "emptied", 1.0, 1.0), {}) == "Post 7 emptied at n/b"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"), (7260, "2 h 01 min")],
)
def test_durations_read_like_people_say_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_grafana_section_defaults_to_off_and_to_the_floor_board() -> None:
    config = CollectorConfig().grafana
    assert not config.enabled
    assert config.dashboard_uid == floor.UID


@pytest.mark.parametrize(
    ("grafana", "complaint"),
    [
        (GrafanaConfig(enabled=True, url="grafana:3000", token_file="t"), "grafana.url"),
        (GrafanaConfig(enabled=True, url="http://grafana:3000"), "grafana.token_file"),
        (GrafanaConfig(queue_size=0), "queue_size"),
    ],
)
def test_unusable_grafana_settings_are_refused(grafana: GrafanaConfig, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        CollectorConfig(grafana=grafana).validate()
