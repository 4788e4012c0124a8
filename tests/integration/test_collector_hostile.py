"""10,000 malformed or hostile messages: the collector keeps running, the floor
does not move, and every message is counted under its reason or as a duplicate."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import encode, topic_for
from tests.integration import scenario
from tests.support import (
    CollectorProcess,
    FakeAgent,
    Samples,
    mqtt_client,
    rebuilt,
    sample,
    wait_until,
)

pytestmark = pytest.mark.integration

TOTAL = 10_000
TOPIC = topic_for(scenario.REGION, scenario.BRANCH, scenario.AGENT, "events")
GOOD = json.loads(encode(scenario.events(7, 7)[0]))  # a valid ticket.issued, seq 7


def event(**changes: object) -> dict[str, object]:
    body = dict(GOOD, seq=10_000)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()
BAD_VALUES: list[dict[str, object]] = [
    {"seq": -1}, {"ts": -5}, {"ts": 1e12}, {"vip": "yes"}, {"seq": "7"},
]  # fmt: skip


def hostile_messages(rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason or "duplicate"), TOTAL of them."""
    dumps = json.dumps
    makers: list[tuple[str, int, object]] = [
        ("bad_json", 1500, lambda: rng.choice([b"{", b"nulx", b"\xff\xfe", b"{\"v\":1,}"])
         + rng.randbytes(rng.randrange(0, 40)).replace(b"}", b"")),
        ("bad_shape", 800, lambda: dumps(rng.choice([1, "x", None, [1, 2], [[]], True])).encode()),
        ("unsupported_version", 800, lambda: dumps(event(v=rng.choice([0, 2, "1", 99]),
                                                         type="future.thing")).encode()),
        ("unknown_type", 800, lambda: dumps(event(type=rng.choice(
            ["ticket.eaten", "", "TICKET.ISSUED", "branch"]))).encode()),
        ("missing_field", 800, lambda: dumps(event(**{rng.choice(
            ["seq", "ts", "device", "ticket", "service"]): _DROP})).encode()),
        ("bad_identifier", 800, lambda: dumps(event(**{rng.choice(["ticket", "device"]):
            rng.choice(["", "has space", "x" * 33, "../etc", "é"])})).encode()),
        ("bad_value", 800, lambda: dumps(event(**rng.choice(BAD_VALUES))).encode()),
        ("too_large", 30, lambda: dumps(event(pad="x" * 70_000)).encode()),
        ("empty_batch", 300, lambda: b"[]"),
        ("too_many_events", 20, lambda: dumps([  # small events: under 64 KiB in all
            {"v": 1, "type": "branch.opened", "seq": 20_000 + i, "ts": 1, "device": "q"}
            for i in range(501)]).encode()),
        ("seq_order", 300, lambda: dumps([event(seq=30_001), event(seq=30_000)]).encode()),
    ]  # fmt: skip
    out: list[tuple[str, bytes, str]] = []
    for reason, count, make in makers:
        out += [(TOPIC, make(), reason) for _ in range(count)]  # type: ignore[operator]
    bad_topics = ["bw/v1/North/br-0001/edge-1/events", "bw/v1/n/br 1/edge-1/events"]
    out += [(rng.choice(bad_topics), encode(scenario.events(7, 7)[0]), "bad_topic")] * 1000
    # Duplicates: the first 10 events of the scenario, again and again.
    already = scenario.events(1, 10)
    out += [(TOPIC, encode(rng.choice(already)), "duplicate") for _ in range(TOTAL - len(out))]
    rng.shuffle(out)
    return out


@pytest.fixture
def collector(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(mosquitto.url, tmp_path, "hostile").start()
    yield proc
    proc.kill()


def floor_only(samples: Samples) -> Samples:
    """The floor's samples that only input can change: not the collector's own counts, and
    not the floor notices, whose chain moves on with time (the scenario leaves posts empty)."""
    return {
        k: v
        for k, v in samples.items()
        if not k[0].startswith(("branchwatch_collector_", "branchwatch_notice"))
    }


def test_ten_thousand_hostile_messages(
    mosquitto: EmbeddedBroker, collector: CollectorProcess
) -> None:
    agent = FakeAgent(mosquitto.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    agent.publish(scenario.events(1, 10))
    before = wait_until(
        lambda: (
            (s := collector.metrics())
            and sample(s, "branchwatch_collector_messages_total", result="accepted") == 10
            and rebuilt(s)
            and s
        ),
        10,
        "the valid prefix, applied",
    )
    agent.close()

    messages = hostile_messages(random.Random(20261123))
    assert len(messages) == TOTAL
    expected = Counter(reason for _, _, reason in messages)
    client = mqtt_client(mosquitto.port, "hostile-publisher")
    infos = [client.publish(topic, payload, qos=1) for topic, payload, _ in messages]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()

    def all_counted() -> Samples | None:
        s = collector.metrics()
        rejected = sample(s, "branchwatch_collector_messages_total", result="rejected") or 0
        dupes = sample(s, "branchwatch_collector_messages_total", result="duplicate") or 0
        dupes -= sample(before, "branchwatch_collector_messages_total", result="duplicate") or 0
        return s if rejected + dupes >= TOTAL else None

    after: Samples = wait_until(all_counted, 60, "every hostile message to be counted")
    assert collector.get("/healthz")[0] == 200
    assert floor_only(after) == floor_only(before)
    assert sample(after, "branchwatch_collector_messages_total", result="accepted") == 10
    got = {
        reason: sample(after, "branchwatch_collector_rejected_total", reason=reason)
        for reason in expected
        if reason != "duplicate"
    }
    want = {reason: float(n) for reason, n in expected.items() if reason != "duplicate"}
    assert got == want
    # The rebuild's replay answer (the valid prefix again) was counted before: a delta.
    dupes_before = sample(before, "branchwatch_collector_messages_total", result="duplicate") or 0
    dupes = sample(after, "branchwatch_collector_messages_total", result="duplicate")
    assert dupes == dupes_before + expected["duplicate"]
