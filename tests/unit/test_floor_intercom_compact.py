"""Intercom figures held compactly: pairs in one sorted tuple, every post's acks in one
flat sequence; exported and restored as before."""

from __future__ import annotations

import msgspec

from branchwatch.contract import events as ev
from collector.floor.config import FloorConfig, PostConfig
from collector.floor.intercom import MAX_ACKS_PER_POST
from collector.snapshot import MAGIC
from collector.store import Store
from tests.floorfeed import FloorFeed

POSTS = tuple(PostConfig(n, f"post {n}") for n in (1, 2, 3, 10))
CONFIG = FloorConfig(posts=POSTS, required_posts=(1,), backfill_order=(), max_intercom_pairs=4)


def counts(store: Store) -> list[tuple[str, float]]:
    """``(pair labels, count)`` of each exported pair, in the exported order."""
    family = "branchwatch_intercom_ack_seconds_count{"
    return [
        (labels.split('branch="b1",')[1], float(value))
        for line in store.render().splitlines()
        if line.startswith(family)
        for labels, value in [line[len(family) :].rsplit("} ", 1)]
    ]


def test_pairs_are_exported_sorted_by_calling_post_then_called_post_as_text() -> None:
    feed = FloorFeed(Store(CONFIG))
    feed(ev.BranchOpened, 1000)
    for ts, source, target in ((1100, 3, 2), (1101, 1, None), (1102, 1, 2), (1103, 1, 10)):
        feed(ev.IntercomCall, ts, from_position=source, to_position=target, reason="vip")
    feed(ev.IntercomAck, 1110, position=10)
    assert counts(feed.store) == [
        ('from_position="1",to_position="10"', 1.0),
        ('from_position="1",to_position="2"', 0.0),
        ('from_position="1",to_position="all"', 1.0),
        ('from_position="3",to_position="2"', 0.0),
    ]


def test_each_post_keeps_its_newest_acks_whatever_the_others_hold() -> None:
    feed = FloorFeed(Store(CONFIG))
    feed(ev.BranchOpened, 1000)
    feed(ev.IntercomAck, 1005, position=3)  # before post 2's acks, and older than all
    for n in range(MAX_ACKS_PER_POST + 2):
        feed(ev.IntercomAck, 1010 + n, position=2)
    # Replayed calls: 1 -> 3 finds post 3's only ack; 1 -> 2 finds 1012, the oldest ack
    # post 2 kept (1010 and 1011 went).
    feed(ev.IntercomCall, 1000, seq=100, from_position=1, to_position=3, reason="vip")
    feed(ev.IntercomCall, 1009, seq=101, from_position=1, to_position=2, reason="vip")
    branch = feed.store.branch_state("r1", "b1")
    assert branch is not None
    assert list(branch.intercom.ack_posts) == [3] + [2] * MAX_ACKS_PER_POST
    sums = {
        line.split('to_position="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in feed.store.render().splitlines()
        if line.startswith("branchwatch_intercom_ack_seconds_sum{")
    }
    assert sums == {"3": 5.0, "2": 3.0}


def test_a_tampered_snapshot_loses_only_what_it_garbled() -> None:
    feed = FloorFeed(Store(CONFIG))
    feed(ev.BranchOpened, 1000)
    feed(ev.IntercomCall, 1100, from_position=1, to_position=2, reason="vip")
    feed(ev.IntercomAck, 1090, position=2)
    document = msgspec.msgpack.decode(feed.store.snapshot()[len(MAGIC) :])
    figures = document["branches"][0]["intercom"]
    figures["ack_posts"] = b"\x02\x03"  # two posts for one ack
    pair = [9, "2", {"counts": [0, 0, 0], "sum": 0.0, "count": 0}, 1100.0, None]
    figures["pairs"].append(pair)  # post 9: not configured
    store = Store.restore(CONFIG, MAGIC + msgspec.msgpack.encode(document))
    branch = store.branch_state("r1", "b1")
    assert branch is not None
    assert (branch.intercom.ack_ts, branch.intercom.ack_posts) == ((), b"")
    assert [(p.source, p.target, p.pending) for p in branch.intercom.pairs] == [(1, "2", 1100.0)]
    FloorFeed(store)(ev.IntercomAck, 1130, seq=10, position=2)  # the open call goes on
    assert counts(store) == [('from_position="1",to_position="2"', 1.0)]
