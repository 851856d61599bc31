"""The soak benchmark's arithmetic: partition bounds to ages, and the verdict on flatness (the
benchmark itself runs from `make bench-soak`)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hookrelay.bench.soak_report import (
    TABLES,
    format_sample,
    format_verdict,
    json_safe,
    judge,
    oldest_partition_age_s,
    oldest_partition_end_age_s,
    partition_range_ms,
    peaks,
    spread,
)
from hookrelay.cli import _parser
from hookrelay.ids import id_bound, millis_of, new_id

MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RETENTION_S, INTERVAL_S = 120.0, 60.0


def bound(low: str, high: str) -> str:
    """A range partition's bound as pg_get_expr(relpartbound) writes it."""
    return f"FOR VALUES FROM ({low}) TO ({high})"


# Bounds and ages


def test_a_range_is_the_milliseconds_of_its_id_bounds() -> None:
    text = bound(f"'{id_bound('evt_', MS)}'", f"'{id_bound('evt_', MS + 60_000)}'")
    assert partition_range_ms(text) == (MS, MS + 60_000)


def test_a_bound_written_as_a_whole_id_reads_the_same() -> None:
    text = bound(f"'{new_id('dlv_', MS)}'", f"'{new_id('dlv_', MS + 1)}'")
    assert partition_range_ms(text) == (MS, MS + 1)


def test_minvalue_and_maxvalue_are_unbounded() -> None:
    assert partition_range_ms(bound("MINVALUE", f"'{id_bound('att_', MS)}'")) == (-math.inf, MS)
    assert partition_range_ms(bound(f"'{id_bound('att_', MS)}'", "MAXVALUE")) == (MS, math.inf)


def test_the_default_partition_has_no_range() -> None:
    assert partition_range_ms("DEFAULT") is None


def test_a_bound_not_on_an_id_is_refused() -> None:
    with pytest.raises(ValueError, match="not a range bound on an id"):
        partition_range_ms("FOR VALUES IN ('a', 'b')")


def minutes(*starts: int) -> list[str]:
    """Bounds of one-minute partitions that start `starts` minutes after MS."""
    return [
        bound(
            f"'{id_bound('evt_', MS + n * 60_000)}'", f"'{id_bound('evt_', MS + (n + 1) * 60_000)}'"
        )
        for n in starts
    ]


def test_the_oldest_partition_age_counts_from_the_smallest_lower_bound() -> None:
    assert oldest_partition_age_s([*minutes(2, 0, 1), "DEFAULT"], MS + 200_000) == 200.0


def test_the_oldest_partition_end_age_counts_from_the_smallest_upper_bound() -> None:
    assert oldest_partition_end_age_s([*minutes(2, 0, 1), "DEFAULT"], MS + 200_000) == 140.0
    # Partitions made ahead of need end in the future.
    assert oldest_partition_end_age_s(minutes(5, 6), MS + 200_000) == -160.0


def test_a_minvalue_partition_is_infinitely_old_and_ends_at_its_upper_bound() -> None:
    bounds = [bound("MINVALUE", f"'{id_bound('evt_', MS)}'"), *minutes(0)]
    assert oldest_partition_age_s(bounds, MS) == math.inf
    assert oldest_partition_end_age_s(bounds, MS + 1000) == 1.0


def test_no_partition_with_a_range_has_no_age() -> None:
    assert oldest_partition_age_s([], MS) is None
    assert oldest_partition_age_s(["DEFAULT"], MS) is None
    assert oldest_partition_end_age_s(["DEFAULT"], MS) is None


def test_an_id_tells_its_millisecond() -> None:
    assert millis_of(new_id("att_", MS + 123)) == MS + 123


# Flatness


def test_spread_is_the_largest_over_the_smallest() -> None:
    assert spread([100.0, 105.0, 110.0]) == pytest.approx(0.10)
    assert spread([7.0, 7.0]) == 0.0
    assert spread([0.0, 1.0]) == math.inf


def test_peaks_take_the_highest_value_over_an_interval_and_a_spacing_before_each_point() -> None:
    points = [(float(t), float(t % 120)) for t in range(0, 601, 30)]
    # The window is (300, 600]; each peak is over the 90 s (60 + 30) before its point.
    expected = [90.0, 90.0, 90.0, 60.0] * 2 + [90.0, 90.0]
    assert peaks(points, 600.0, 60.0) == expected


def test_a_sawtooth_reported_a_little_late_each_time_is_flat() -> None:
    # As a 20-minute soak reported it: every 30 s and a few tens of milliseconds late, each
    # report alternately just before and just after a partition's drop (82 MB, then 70 MB).
    times = [30.0 * n + 0.1 * (n % 3) + 0.02 * n for n in range(1, 41)]
    samples = [sample(t, 82e6 if n % 2 else 70e6, 140, True) for n, t in enumerate(times)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["flat"] is True and verdict["passed"] is True


def test_a_sawtooth_judged_on_the_sizes_read_between_reports_is_flat() -> None:
    # Reports every 33 s drift against drops every 60 s: the peak of the reports alone depends
    # on where they fall in the saw-tooth. The sizes read every 5 s between them find its top.
    samples = [sample(33.0 * n, sawtooth(33.0 * n), 150, True) for n in range(1, 37)]
    alone = judge(samples, RETENTION_S, INTERVAL_S)
    assert alone["flat"] is False and alone["tables"]["events"]["spread"] > 0.1
    sizes = [(5.0 * n, dict.fromkeys(TABLES, sawtooth(5.0 * n))) for n in range(1, 238)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S, sizes)
    assert verdict["flat"] is True and verdict["passed"] is True
    assert verdict["tables"]["events"]["spread"] < 0.05


def sample(t_s: float, size: float, age_s: float | None, partitioned: bool) -> dict[str, Any]:
    """A report whose tables all have `size` bytes; `age_s` is the age judged: the oldest
    partition's upper bound (its lower bound one minute older), or the oldest row."""
    table = {
        "bytes": size,
        "partitioned": partitioned,
        "oldest_partition_age_s": None if age_s is None or not partitioned else age_s + 60,
        "oldest_partition_end_age_s": age_s if partitioned else None,
        "oldest_row_age_s": age_s,
    }
    return {"t_s": t_s, "tables": {name: dict(table) for name in TABLES}}


def sawtooth(t_s: float) -> float:
    """Bytes of a log that holds 2 to 3 minutes of data: a partition dropped every minute."""
    return 1_000_000 * (2 + (t_s % 60) / 60)


def test_a_sawtooth_of_dropped_partitions_is_flat() -> None:
    samples = [sample(t, sawtooth(t), 120 + t % 60, True) for t in range(30, 1201, 30)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["judged"] and verdict["flat"] and verdict["no_partition_too_old"]
    assert verdict["passed"] is True


def test_tables_that_keep_growing_fail() -> None:
    # Today's pruning: 30 rows/s removed out of 500/s, so the tables grow all the time.
    samples = [sample(t, 470.0 * 300 * t, t, False) for t in range(30, 1201, 30)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["judged"] and verdict["flat"] is False
    # Peaks of the last 5 minutes of steady growth: 1200 s over 930 s.
    assert verdict["tables"]["events"]["spread"] == pytest.approx(1200 / 930 - 1, abs=0.01)
    assert verdict["passed"] is False


def test_growth_of_a_tenth_and_a_bit_in_the_last_minutes_fails() -> None:
    samples = [
        sample(t, sawtooth(t) * (1.12 if t > 1080 else 1.0), 150, True) for t in range(30, 1201, 30)
    ]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["flat"] is False and verdict["passed"] is False


def test_a_partition_older_than_retention_and_one_interval_fails_though_flat() -> None:
    samples = [sample(t, sawtooth(t), 120 + t % 60, True) for t in range(30, 1201, 30)]
    samples[-3]["tables"]["attempts"]["oldest_partition_end_age_s"] = 181.0
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["flat"] is True
    assert verdict["tables"]["attempts"]["age_ok"] is False
    assert verdict["no_partition_too_old"] is False and verdict["passed"] is False


def test_a_plain_table_is_judged_by_its_oldest_row() -> None:
    samples = [sample(t, 5e6, 200.0, False) for t in range(30, 1201, 30)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["tables"]["events"]["worst_age_s"] == 200.0
    assert verdict["no_partition_too_old"] is False


def test_a_window_of_fewer_than_three_reports_is_not_judged() -> None:
    samples = [sample(t, sawtooth(t), 150, True) for t in range(400, 1201, 400)]
    assert judge(samples, RETENTION_S, INTERVAL_S)["judged"] is False


def test_a_run_shorter_than_filling_up_and_the_window_is_not_judged() -> None:
    # Retention + one interval (3 minutes) + the 5-minute window: 8 minutes at least.
    samples = [sample(t, sawtooth(t), 150, True) for t in range(30, 451, 30)]
    verdict = judge(samples, RETENTION_S, INTERVAL_S)
    assert verdict["judged"] is False
    assert verdict["flat"] is None and verdict["passed"] is None
    assert "not judged, the run is too short" in format_verdict(
        {"verdict": verdict, "settings": {"retention": "2m", "partition_interval": "1m"}}
    )


def test_an_unbounded_age_is_written_as_unbounded_in_json() -> None:
    figures = {"tables": {"events": {"oldest_partition_age_s": math.inf, "rows": 3}}}
    assert json_safe(figures) == {
        "tables": {"events": {"oldest_partition_age_s": "unbounded", "rows": 3}}
    }


# The report


def test_a_report_shows_each_table_its_size_age_and_removals() -> None:
    table = {
        "rows": 60_000,
        "bytes": 3 * 2**20,
        "partitioned": True,
        "partitions": 4,
        "oldest_partition_age_s": 171.4,
        "oldest_row_age_s": 150.0,
        "removed_per_s": 498.5,
    }
    text = format_sample(
        {
            "t_s": 600.0,
            "ingest": {
                "per_s": 499.9,
                "accepted": 300_000,
                "failed": 0,
                "first_error": "",
                "ms": {"p50": 2.1, "p95": 4.5, "p99": 9.0},
            },
            "delivery": {"delivered_per_s": 500.1, "backlog": 12, "queue_lag_s": 0.0},
            "tables": {name: table for name in TABLES},
            "soak_rss_mb": 61.0,
        }
    )
    assert "ingest 499.9/s (p50 2.1 / p95 4.5 ms; 300,000 accepted, 0 failed)" in text
    assert "backlog 12" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("deliveries"))
    assert row.split() == ["deliveries", "60,000", "3.0", "4", "171", "s", "part", "498.5"]


# The command


def test_the_command_takes_durations_and_defaults_to_the_goal() -> None:
    args = _parser().parse_args(["bench", "soak"])
    assert (args.rate, args.minutes, args.every) == (500, 20, 30.0)
    assert (args.retention, args.partition_interval) == (120.0, 60.0)
    args = _parser().parse_args(["bench", "soak", "--retention", "90s", "--minutes", "0.5"])
    assert (args.retention, args.minutes) == (90.0, 0.5)


@pytest.mark.parametrize(
    "argv",
    [
        ["--retention", "0s"],
        ["--partition-interval", "soon"],
        ["--rate", "0"],
        ["--minutes", "-1"],
        ["--rate", "nan"],
    ],
)
def test_the_command_refuses_what_cannot_run(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["bench", "soak", *argv])
    assert exit_.value.code == 2
    assert "hookrelay bench soak: error: argument" in capsys.readouterr().err
