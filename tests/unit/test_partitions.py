"""What the partition upkeep decides from the catalog: bounds, the ranges to make, the expired."""

from __future__ import annotations

import itertools

import pytest

from hookrelay.storage.partitions import (
    AHEAD_INTERVALS,
    MIN_AHEAD_S,
    Partition,
    expired,
    interval_ms,
    parse_bound,
    partition_name,
    ranges_to_make,
)

MINUTE, DAY = 60_000, 86_400_000
NOW = 1_764_500_000_000  # 2025-11-30 10:53:20 UTC


def test_a_bound_is_read_as_postgres_writes_it() -> None:
    bound = "FOR VALUES FROM ('evt_019ad4d0d800') TO ('evt_019ad4d1c260')"
    assert parse_bound(bound) == (0x019AD4D0D800, 0x019AD4D1C260)


def test_the_first_partition_starts_at_the_start_of_time() -> None:
    assert parse_bound("FOR VALUES FROM (MINVALUE) TO ('dlv_019ad4d0d800')") == (
        None,
        0x019AD4D0D800,
    )


@pytest.mark.parametrize(
    "bound", ["DEFAULT", "FOR VALUES FROM ('x') TO ('y')", "FOR VALUES IN ('a')", ""]
)
def test_a_bound_that_is_not_the_logs_is_refused(bound: str) -> None:
    with pytest.raises(ValueError, match="not a bound"):
        parse_bound(bound)


def test_ranges_reach_past_now_by_the_time_ahead_each_ending_on_the_interval() -> None:
    start = (NOW // MINUTE) * MINUTE
    ranges = ranges_to_make(start, NOW, MINUTE)
    assert ranges[0][0] == start
    assert all(upper % MINUTE == 0 and upper - lower <= MINUTE for lower, upper in ranges)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # no gap
    assert ranges[-1][1] >= NOW + MIN_AHEAD_S * 1000
    assert ranges[-1][1] - MINUTE < NOW + MIN_AHEAD_S * 1000  # and no further


def test_a_wide_interval_reaches_ahead_by_whole_intervals() -> None:
    ranges = ranges_to_make((NOW // DAY) * DAY, NOW, DAY)
    assert ranges[-1][1] >= NOW + AHEAD_INTERVALS * DAY
    assert [upper - lower for lower, upper in ranges] == [DAY] * len(ranges)


def test_after_a_cutover_off_the_interval_the_first_range_is_shorter() -> None:
    cutover = (NOW // DAY) * DAY + 5 * MINUTE
    first = ranges_to_make(cutover, NOW, DAY)[0]
    assert first == (cutover, (NOW // DAY + 1) * DAY)


def test_nothing_to_make_when_partitions_reach_far_enough() -> None:
    assert ranges_to_make(NOW + 3 * DAY, NOW, DAY) == []


def test_a_gap_left_by_a_long_stop_is_filled_from_the_last_bound() -> None:
    last = NOW - 10 * MINUTE  # no worker for ten minutes: ingest into this gap failed
    ranges = ranges_to_make(last, NOW, MINUTE)
    assert ranges[0][0] == last


def test_only_partitions_wholly_older_than_the_retention_have_expired() -> None:
    retention_ms = 2 * MINUTE
    partitions = [
        Partition("events", "events_first", None, NOW - 5 * MINUTE),
        Partition("events", "a", NOW - 5 * MINUTE, NOW - 2 * MINUTE),  # ends at the cutoff
        Partition("events", "b", NOW - 2 * MINUTE, NOW - MINUTE),  # holds kept rows
        Partition("events", "c", NOW, NOW + MINUTE),
    ]
    assert [p.name for p in expired(partitions, NOW, retention_ms)] == ["events_first", "a"]


def test_names_are_the_utc_minute_a_partition_starts_at() -> None:
    assert partition_name("deliveries", 1_764_460_800_000) == "deliveries_p20251130_0000"
    assert partition_name("events", 1_764_500_000_000) == "events_p20251130_1053"


@pytest.mark.parametrize("seconds", [0, 30, 90.5, 61])
def test_an_interval_must_be_whole_minutes(seconds: float) -> None:
    with pytest.raises(ValueError, match="whole minutes"):
        interval_ms(seconds)


def test_an_interval_in_milliseconds() -> None:
    assert interval_ms(86400) == DAY
