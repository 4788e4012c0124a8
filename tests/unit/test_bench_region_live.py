"""bench.region_scrape's live trickle: the measured region's own branches going on with
their day, so every live event changes a branch the collector holds."""

from __future__ import annotations

from bench.mqttload import batches
from bench.region_scrape import REGION, live_events
from branchwatch.contract import decode_events


def test_live_events_continue_the_days_sent() -> None:
    day, _ = batches(3, 7, hours=0.5, regions=(REGION,))
    last_seq: dict[str, int] = {}
    for topic, payload in day:
        last_seq[topic] = max(last_seq.get(topic, 0), decode_events(payload)[-1].seq)
    live = live_events(3, 7, 0.5, 40)
    assert len(live) == 40
    expected = dict(last_seq)
    for topic, payload in live:
        assert topic in last_seq, f"{topic}: not a branch of the day sent"
        (event,) = decode_events(payload)
        assert event.seq == expected[topic] + 1, topic  # no duplicate, no gap
        expected[topic] = event.seq
