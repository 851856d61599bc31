"""The soak benchmark's figures, without I/O: partition bounds and ages, the verdict against
the goal (table sizes flat over the last 5 minutes, their peaks within 10% of each other, since
dropped partitions make a saw-tooth; nothing older than retention + one interval), and the
reports as text."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hookrelay.durations import format_duration

# The tables watched; the first three are the event log, which retention empties (their oldest
# partition, or row, is judged), the last is pruned by its own time to live.
TABLES = ("events", "deliveries", "attempts", "idempotency_keys")
LOG_TABLES = TABLES[:3]
# The goal: over the last FLAT_WINDOW_S, each table's size within FLAT_TOLERANCE of itself.
FLAT_WINDOW_S = 300.0
FLAT_TOLERANCE = 0.10
MIN_REPORTS_JUDGED = 3
# Sizes are compared by their peaks: a partition dropped once per interval makes a saw-tooth
# (2 to 3 minutes of data with 2 minutes' retention and 1-minute partitions) that is not growth.
# Each report's peak is taken over the interval and the largest spacing of the window's reports
# before it, a span that always holds a report from before the last drop (peaks per clock minute
# did not: with reports every 30 s, a tenth of a second either side of the minute edges, some
# minutes held one report, taken just after a drop, and a run whose tables went up and down
# between the same two sizes failed).
# One side of a range bound on an id: `'evt_<12 hex digits of unix ms>...'`, MINVALUE or MAXVALUE.
_BOUND_VALUE = r"(?:'[a-z]+_([0-9a-f]{12})[^']*'|(MINVALUE|MAXVALUE))"
_RANGE = re.compile(rf"FROM \({_BOUND_VALUE}\) TO \({_BOUND_VALUE}\)")


def partition_range_ms(partition_bound: str) -> tuple[float, float] | None:
    """The unix milliseconds where a range partition begins and ends, from its
    `pg_get_expr(relpartbound)` (`FOR VALUES FROM ('evt_0190...') TO ('evt_0190...')`):
    MINVALUE is -inf, MAXVALUE inf; None for the DEFAULT partition, which has no range."""
    if partition_bound.strip() == "DEFAULT":
        return None
    match = _RANGE.search(partition_bound)
    if match is None:
        raise ValueError(f"not a range bound on an id: {partition_bound!r}")
    low_hex, low_word, high_hex, high_word = match.groups()
    return _bound_ms(low_hex, low_word), _bound_ms(high_hex, high_word)


def _bound_ms(hex_ms: str | None, word: str | None) -> float:
    if hex_ms is not None:
        return float(int(hex_ms, 16))
    return -math.inf if word == "MINVALUE" else math.inf


def oldest_partition_age_s(bounds: list[str], now_ms: float) -> float | None:
    """Seconds since the oldest lower bound among `bounds` (inf for MINVALUE); None if no
    partition has a range."""
    ranges = [r for r in map(partition_range_ms, bounds) if r is not None]
    return (now_ms - min(low for low, _ in ranges)) / 1000 if ranges else None


def oldest_partition_end_age_s(bounds: list[str], now_ms: float) -> float | None:
    """Seconds since the partition that ends first ended: how long all of its rows have been
    at least that old (negative: it ends in the future); None if no partition has a range."""
    ranges = [r for r in map(partition_range_ms, bounds) if r is not None]
    return (now_ms - min(high for _, high in ranges)) / 1000 if ranges else None


def spread(values: list[float]) -> float:
    """How far the largest of `values` is above the smallest, as a share of the smallest."""
    low, high = min(values), max(values)
    if high == low:
        return 0.0
    return math.inf if low <= 0 else high / low - 1


def peaks(points: list[tuple[float, float]], end_s: float, interval_s: float) -> list[float]:
    """For each of the (seconds, value) points in the FLAT_WINDOW_S that ends at `end_s`, the
    peak value over the `interval_s` and one spacing of the points before it."""
    start_s = end_s - FLAT_WINDOW_S
    times = [at for at, _ in points if at > start_s - interval_s]
    spacing = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    span_s = interval_s + spacing
    return [
        max(value for before, value in points if at - span_s < before <= at)
        for at, _ in points
        if start_s < at <= end_s
    ]


def judge(
    samples: list[dict[str, Any]],
    retention_s: float,
    interval_s: float,
    sizes: Sequence[tuple[float, Mapping[str, float]]] = (),
) -> dict[str, Any]:
    """The verdict against the goal. Flatness needs the run to have lasted retention + one
    interval (the tables fill up) plus the window; before that it is not judged (None). The
    peaks are taken over the reports' sizes and `sizes`, (seconds, bytes by table) read between
    reports: a saw-tooth sampled only every 30 s shows a peak that depends on where the samples
    fall in it (with reports drifting against the drops, it was judged 13.5% apart)."""
    end_s = samples[-1]["t_s"]
    age_limit_s = retention_s + interval_s
    window = [s for s in samples if s["t_s"] > end_s - FLAT_WINDOW_S]
    # A window of fewer reports than that says nothing about flatness.
    judged = end_s >= age_limit_s + FLAT_WINDOW_S and len(window) >= MIN_REPORTS_JUDGED
    tables: dict[str, Any] = {}
    for name in TABLES:
        points = [(s["t_s"], s["tables"][name]["bytes"]) for s in samples]
        points += [(at, size[name]) for at, size in sizes if at <= end_s]
        highs = peaks(sorted(points), end_s, interval_s)
        found = {
            "bytes_peaks": highs,
            "spread": _finite(round(spread(highs), 3)) if highs else None,
            "flat": bool(highs) and spread(highs) <= FLAT_TOLERANCE,
        }
        if name in LOG_TABLES:
            ages = [_age(s["tables"][name]) for s in window]
            worst = max((a for a in ages if a is not None), default=None)
            found["worst_age_s"] = _finite(None if worst is None else round(worst, 1))
            found["age_ok"] = worst is None or worst <= age_limit_s
        tables[name] = found
    flat = all(t["flat"] for t in tables.values())
    fresh = all(tables[name]["age_ok"] for name in LOG_TABLES)
    return {
        "judged": judged,
        "flat": flat if judged else None,
        "no_partition_too_old": fresh,
        "age_limit_s": age_limit_s,
        "passed": (flat and fresh) if judged else None,
        "tables": tables,
    }


def _age(table: dict[str, Any]) -> float | None:
    """What is judged against retention + one interval: of a partitioned table, the age of the
    oldest partition's upper bound (a partition older than that has no newer row; the drop
    after its expiry may wait for the next maintenance turn); of a plain table, its oldest
    row."""
    age: float | None = table[
        "oldest_partition_end_age_s" if table["partitioned"] else "oldest_row_age_s"
    ]
    return age


def _finite(value: float | None) -> float | str | None:
    """JSON has no infinity: an unbounded age is written as "unbounded"."""
    return "unbounded" if value is not None and math.isinf(value) else value


def _age_text(table: dict[str, Any]) -> str:
    if table["partitioned"]:
        age = table["oldest_partition_age_s"]
        return "-" if age is None else ("MINVALUE" if math.isinf(age) else f"{age:,.0f} s part")
    age = table["oldest_row_age_s"]
    return "-" if age is None else f"{age:,.0f} s row"


def format_sample(sample: dict[str, Any]) -> str:
    """One report as lines of text."""
    ingest, delivery = sample["ingest"], sample["delivery"]
    lines = [
        f"[{sample['t_s']:7.1f} s] ingest {ingest['per_s']:,.1f}/s (p50 {ingest['ms']['p50']} /"
        f" p95 {ingest['ms']['p95']} ms; {ingest['accepted']:,} accepted, {ingest['failed']}"
        f" failed)  delivered {delivery['delivered_per_s']:,.1f}/s  backlog"
        f" {delivery['backlog']:,}  queue lag {delivery['queue_lag_s']} s  soak RSS"
        f" {sample.get('soak_rss_mb', '?')} MB",
        f"  {'table':<17}{'rows':>11}{'MB':>9}{'parts':>7}{'oldest':>16}{'removed/s':>11}",
    ]
    for name, table in sample["tables"].items():
        lines.append(
            f"  {name:<17}{table['rows']:>11,}{table['bytes'] / 2**20:>9.1f}"
            f"{table['partitions']:>7}{_age_text(table):>16}{table['removed_per_s']:>11,.1f}"
        )
    if ingest["first_error"]:
        lines.append(f"  first ingest error: {ingest['first_error']}")
    return "\n".join(lines)


def format_verdict(figures: dict[str, Any]) -> str:
    verdict, settings = figures["verdict"], figures["settings"]
    limit = format_duration(verdict["age_limit_s"])
    lines = [
        f"goal: table sizes flat (last {FLAT_WINDOW_S / 60:g} minutes' peaks within"
        f" {FLAT_TOLERANCE:.0%} of each other) and nothing older than retention + one interval"
        f" ({settings['retention']} + {settings['partition_interval']} = {limit}): no partition"
        " whose upper bound is, no row of a plain table"
    ]
    for name, table in verdict["tables"].items():
        text = f"  {name:<17} size spread {table['spread']}"
        if "worst_age_s" in table:
            judged = "ok" if table["age_ok"] else "too old"
            window = f"{FLAT_WINDOW_S / 60:g} minutes"
            text += f", oldest over the last {window}: {table['worst_age_s']} s ({judged})"
        lines.append(text)
    if verdict["judged"]:
        lines.append(
            f"verdict: {'PASS' if verdict['passed'] else 'FAIL'}"
            f" (flat: {verdict['flat']}, none too old: {verdict['no_partition_too_old']})"
        )
    else:
        lines.append(
            f"verdict: not judged, the run is too short (flatness needs {limit} to fill the"
            f" tables plus {FLAT_WINDOW_S / 60:g} minutes); none too old:"
            f" {verdict['no_partition_too_old']}"
        )
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """`value` with every infinite number written as "unbounded" (JSON has no infinity)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return _finite(value)
    return value
