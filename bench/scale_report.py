"""The tables of ``make bench-scale`` (markdown, as docs/benchmarks.md shows them) and the
extrapolation to the whole bank, from the figures of one run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

BANK_BRANCHES: Final = 23_433
BANK_PEAK_RATE: Final = 6_000.0
MB: Final = 2**20


def _num(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:,.0f} ms"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def window_rate(samples: Sequence[Sequence[float]], start: float, end: float, index: int) -> float:
    """Per second of column ``index`` of a shard's samples between ``start`` and ``end``."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return 0.0
    return (inside[-1][index] - inside[0][index]) / (inside[-1][0] - inside[0][0])


def steady_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Totals of the steady window: events/s applied, messages/s published, CPU by kind."""
    start, end = report["window"]
    sims = [s for s in report["sims"].values() if s]
    cpu = report["cpu"]
    return {
        "generated": sum(window_rate(s["samples"], start, end, 1) for s in sims),
        "published": sum(window_rate(s["samples"], start, end, 2) for s in sims),
        "outstanding_max": max(
            (row[3] for s in sims for row in s["samples"] if start <= row[0] <= end), default=0
        ),
        # The probes' events are live too: counted apart.
        "applied": sum(
            f.get("events_per_s", 0.0) - report["probe_rate"] for f in report["lag"].values()
        ),
        "cpu_nats": sum(v for k, v in cpu.items() if k.startswith("mq")),
        "cpu_collectors": sum(v for k, v in cpu.items() if k.startswith("collector-")),
        "cpu_sims": sum(v for k, v in cpu.items() if k.startswith("sim ")),
        "cpu_prometheus": sum(v for k, v in cpu.items() if k.startswith("prometheus-")),
        "cpu_all": sum(cpu.values()),
    }


def print_report(report: dict[str, Any]) -> int:
    """Print every table; 1 when a collector's totals are not exact (or it never settled)."""
    plan = report["plan"]
    totals = steady_figures(report)
    start, end = report["window"]
    print(
        f"\n## Bank scale: {plan['branches']:,} branches, {len(plan['regions'])} regions, "
        f"speed {plan['speed']:.2f}x, {report['date']}"
    )
    print(
        f"steady window {end - start:.0f} s; load average at its end "
        f"{', '.join(f'{x:.2f}' for x in report['load_average'])}; "
        f"cores {report['machine']['cores']}\n"
    )
    print(
        f"generated {totals['generated']:,.0f} events/s, published "
        f"{totals['published']:,.0f} messages/s, applied {totals['applied']:,.0f} live "
        f"events/s (all collectors); the shards' unacknowledged messages at most "
        f"{totals['outstanding_max']:,}\n"
    )
    rows = []
    for name, where in report["collectors"].items():
        lag = report["lag"].get(where["url"], {})
        scrape = report["scrape"].get(where["region"], {}).get(where["url"], {})
        e2e = report["e2e"].get(name, {})
        rss, empty = report["rss"][name], report["empty_rss"][name]
        live = lag.get("events_per_s")  # None: fewer than two scrapes in the window
        rows.append(
            [
                name,
                f"{where['region']} / {where['branches']:,}",
                where["node"],
                f"{report['cpu'][name] * 100:.0f} %",
                f"{rss / MB:.0f} MB",
                f"{(rss - empty) / where['branches'] / 1024:.1f} KiB",
                _num(live - report["probe_rate"] if live is not None else None, "", 0),
                f"{ms(lag.get('p50'))} / {ms(lag.get('p99'))}",
                f"{ms(scrape.get('duration_avg'))} / {ms(scrape.get('duration_max'))}",
                _num(scrape.get("samples"), "", 0),
                f"{ms(e2e.get('p50'))} / {ms(e2e.get('p99'))}",
            ]
        )
    table(
        [
            "collector",
            "region / branches",
            "first node",
            "CPU (of one core)",
            "RSS",
            "RSS per branch (above empty)",
            "live events/s (not the probes')",
            "ingest lag p50 / p99",
            "scrape duration mean / max (slowest shard)",
            "samples per scrape (its shards together)",
            "publish → API p50 / p99",
        ],
        rows,
    )
    print_others(report)
    if report.get("kills"):
        print_kill(report)
    failed = print_exactness(report)
    print_extrapolation(report, totals)
    print("result:", "FAIL (totals not exact)" if failed else "pass (every collector exact)")
    return 1 if failed else 0


def print_others(report: dict[str, Any]) -> None:
    cpu = report["cpu"]
    rows = [
        [name, f"{share * 100:.0f} %"]
        for name, share in cpu.items()
        if not name.startswith("collector-")
    ]
    rows.append(["all measured processes", f"{sum(cpu.values()) * 100:.0f} %"])
    table(["process (steady window)", "CPU (of one core)"], rows)
    federated = report.get("global", {}).values()
    if federated:
        print(
            f"global Prometheus: {report.get('global_series', 0)} region:* series federated "
            f"from {len(federated)} regions; a federation scrape "
            f"{ms(max(f.get('duration_avg', 0.0) for f in federated))} mean at most, "
            f"{sum(f.get('samples', 0.0) for f in federated):.0f} samples\n"
        )


def led_text(kill: dict[str, Any]) -> str:
    """What the killed node led, grouped: streams, each collector's consumers, the rest
    counted (the simulator's connections, the probes, the nodes' retained-message readers)."""
    parts: list[str] = []
    groups: dict[str, int] = {}
    for what, count in kill["led"].items():
        stream, _, owner = what.partition(" consumer of ")
        if not owner:
            parts.append(stream)
        elif owner.startswith("collector-"):
            parts.append(f"the consumer of {owner}")
        else:
            if owner.startswith("bench-sim-"):
                label = "consumers of simulator connections"
            elif owner.startswith("probe-"):
                label = "consumers of probe agents"
            else:
                label = f"{stream} consumers of nodes"
            groups[label] = groups.get(label, 0) + count
    parts += [f"{label}: {n}" for label, n in groups.items()]
    return ", ".join(parts) or "nothing"


def cause(kill: dict[str, Any], collector: str) -> str:
    """What the dead node led that lies on this collector's path (events in, its session)."""
    led = kill["led"]
    parts = [name for name in ("$MQTT_msgs", "$MQTT_sess", "meta") if name in led]
    for kind in ("events", "status"):
        if f"$MQTT_msgs consumer of {collector} ({kind})" in led:
            parts.append(f"its {kind} consumer")
    return ", ".join(parts) or "none of it"


def print_kill(report: dict[str, Any]) -> None:
    nodes = report.get("nodes", {})
    start = report["window"][0] - report["plan"]["warmup"]
    rows = []
    for k, kill in enumerate(report["kills"], 1):
        restarted = kill.get("restarted", "never")
        if restarted == "never":
            again = "left dead"
        elif restarted is None:
            again = "started again, not serving when the next kill was due: no more kills"
        else:
            again = f"started again, serving {restarted - kill['killed']:.0f} s after the kill"
        print(
            f"kill {k}: {kill['node']} at +{kill['killed'] - start:.0f} s ({again}); "
            f"it led: {led_text(kill)}"
        )
        for name, seen in kill["collectors"].items():
            failover = seen["failover"]
            if failover.get("lost") is None:
                own = f"stayed on {nodes.get(failover.get('on', ''), '?')}"
            elif failover.get("subscribed") is None:
                own = "lost its broker, not subscribed again"
            else:
                to = nodes.get(failover["broker"].split(" ")[0], failover["broker"])
                own = f"subscribed on {to} after {failover['subscribed'] - kill['killed']:.2f} s"
            by_probe = " / ".join(f"{v:.1f}" for v in seen["stall_by_probe"].values())
            rows.append(
                [
                    str(k),
                    kill["node"],
                    name,
                    cause(kill, name),
                    f"{seen['stall']:.2f} s",
                    f"{by_probe} s",
                    own,
                    _num(seen["max_after_kill"], " s"),
                ]
            )
    print()
    table(
        [
            "kill",
            "node",
            "collector",
            "what the node led on its path",
            "stall",
            "stall per probe path via mq1 / mq2 / mq3",
            "its own failover",
            "publish → API max",
        ],
        rows,
    )
    for k, kill in enumerate(report["kills"], 1):
        pairs = kill.get("pairs", {})
        if pairs:
            print(
                f"kill {k}, HA pairs, the longest time neither twin showed a new probe event: "
                + ", ".join(f"{region} {stall:.2f} s" for region, stall in pairs.items())
            )
    steady = [e["gap_steady"] for e in report["e2e"].values()]
    print(f"(the longest gap between probe events before the first kill: {max(steady):.2f} s)\n")
    rows = []
    for k, kill in enumerate(report["kills"], 1):
        span = (kill["killed"], kill["until"])
        for shard, final in report["sims"].items():
            if not final:
                continue
            moved = [_moves(c["connects"], span, nodes) for c in final["connections"]]
            firsts = sorted(m[0][0] for m in moved if m)
            timeouts = sorted(
                t - kill["killed"]
                for c in final["connections"]
                for t, _ in c["publish_timeouts"]
                if span[0] <= t < span[1]
            )
            where = sorted({node for m in moved for _, node in m})
            rows.append(
                [
                    str(k),
                    f"{shard} ({len(moved)} connections)",
                    f"{len(firsts)} moved, after {_span(firsts)} (to {', '.join(where)})"
                    if firsts
                    else "none moved",
                    f"{len(timeouts)}, at {_span(timeouts)}" if timeouts else "none",
                ]
            )
        probes = {name: _moves(c, span, nodes) for name, c in report["probes"].items()}
        probe_firsts = sorted(m[0][0] for m in probes.values() if m)
        rows.append(
            [
                str(k),
                f"probe agents ({len(probes)})",
                f"{len(probe_firsts)} moved, after {_span(probe_firsts)}"
                if probe_firsts
                else "none moved",
                "",
            ]
        )
    table(
        ["kill", "clients", "connected again within the kill's minute", "PUBACK deadlines run out"],
        rows,
    )


def _moves(
    connects: Sequence[Sequence[Any]], span: tuple[float, float], nodes: dict[str, str]
) -> list[tuple[float, str]]:
    """(seconds after the kill, node) of each connect within ``span``."""
    return [(t - span[0], nodes.get(url, url)) for t, url in connects if span[0] <= t < span[1]]


def _span(seconds: Sequence[float]) -> str:
    if len(seconds) == 1 or seconds[0] == seconds[-1]:
        return f"{seconds[0]:.2f} s"
    return f"{seconds[0]:.2f}–{seconds[-1]:.2f} s"


def print_exactness(report: dict[str, Any]) -> bool:
    rows, failed = [], False
    for name, result in report["exactness"].items():
        settle = report["settle"].get(name)
        own = report["self"].get(name, {})
        dups = own.get('branchwatch_collector_messages_total{result="duplicate"}', 0.0)
        gaps = own.get("branchwatch_collector_events_missing_total", 0.0)
        failed |= not result["exact"] or settle is None
        rows.append(
            [
                name,
                f"{result['agents']:,}",
                f"{result['events']:,}",
                f"{result['expected']:,} / {result['counted']:,}",
                str(result["lost"]),
                str(result["duplicated"]),
                str(len(result["behind"]) + result["missing"]),
                f"{gaps:,.0f} / {dups:,.0f}",
                "timed out" if settle is None else f"{settle:.0f} s",
            ]
        )
    table(
        [
            "collector",
            "agents",
            "events generated",
            "counts expected / shown",
            "lost",
            "double-counted",
            "seqs short or missing",
            "gaps seen / duplicates dropped",
            "caught up after the traffic",
        ],
        rows,
    )
    for name, result in report["exactness"].items():
        for line in result["behind"][:5]:
            print(f"  {name}: {line}")
    return failed


def print_extrapolation(report: dict[str, Any], totals: dict[str, Any]) -> None:
    plan = report["plan"]
    applied = totals["applied"] / (2 if plan["twins"] else 1)  # each event once per region
    if applied <= 0 or totals["published"] <= 0:
        return
    ratio = BANK_PEAK_RATE / applied
    rss_per_branch = sum(
        (report["rss"][n] - report["empty_rss"][n]) / c["branches"]
        for n, c in report["collectors"].items()
    ) / len(report["collectors"])
    samples = [f["samples"] for region in report["scrape"].values() for f in region.values()]
    per_branch = sum(samples) / len(samples) / (plan["branches"] / len(plan["regions"]))
    copies = 2 if plan["twins"] else 1
    by_branches = BANK_BRANCHES / plan["branches"]
    print(
        f"Extrapolated to the bank ({BANK_BRANCHES:,} branches, {BANK_PEAK_RATE:,.0f} "
        f"events/s at peak): this run carried {applied:,.0f} events/s, 1/{ratio:.1f} of it. "
        "Linear in the rate (CPU) and in the branches (memory, series); single-event "
        "messages; the same machine's cores:\n"
    )
    table(
        ["part", "this run", "the bank at peak"],
        [
            [
                "collectors' CPU",
                f"{totals['cpu_collectors']:.2f} cores",
                f"{totals['cpu_collectors'] * ratio:.1f} cores",
            ],
            [
                "collectors' memory above empty",
                f"{rss_per_branch / 1024:.1f} KiB per branch",
                f"{rss_per_branch * BANK_BRANCHES * copies / 2**30:.1f} GiB",
            ],
            [
                "NATS, 3 nodes together (by messages: agents send one event each)",
                f"{totals['cpu_nats']:.2f} cores",
                f"{totals['cpu_nats'] * BANK_PEAK_RATE / totals['published']:.1f} cores",
            ],
            [
                "Prometheus (regions and global)",
                f"{totals['cpu_prometheus']:.2f} cores",
                f"{totals['cpu_prometheus'] * by_branches:.1f} cores (by branches)",
            ],
            [
                "samples per scrape (its shards together)",
                f"{per_branch:.0f} per branch",
                f"{per_branch * BANK_BRANCHES:,.0f} in all regions",
            ],
        ],
    )
