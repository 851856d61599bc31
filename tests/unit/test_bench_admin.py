"""The admin benchmark's seed and report (the benchmark itself runs from `make bench-admin`)."""

from __future__ import annotations

import base64

from hookrelay.bench.admin import cursor_at, event_ms, report, seed_rows
from hookrelay.ids import ID_PATTERN, millis_of
from hookrelay.statuses import DeliveryStatus
from hookrelay.storage.maintenance import DELIVERY_COLUMNS, EVENT_COLUMNS
from hookrelay.storage.partitions import ranges_to_make

HOUR_MS = 3_600_000
ENDPOINTS = [f"ep_{n:032x}" for n in range(10)]


def test_events_spread_evenly_over_the_span_each_in_its_own_millisecond() -> None:
    moments = [event_ms(n, 1000, 5_000, 48 * HOUR_MS) for n in range(1000)]
    assert moments[0] == 5_000
    assert moments == sorted(set(moments))
    assert moments[-1] < 5_000 + 48 * HOUR_MS
    assert event_ms(500, 1000, 5_000, 48 * HOUR_MS) == 5_000 + 24 * HOUR_MS


def test_seeded_ids_fill_every_partition_made_for_the_span() -> None:
    base = 1_800_000_000_000 // HOUR_MS * HOUR_MS
    _, deliveries = seed_rows("app_x", ENDPOINTS, range(480), 480, base, 48 * HOUR_MS)
    hours = {millis_of(row[0]) // HOUR_MS for row in deliveries}
    partitions = ranges_to_make(base, base + 48 * HOUR_MS, HOUR_MS)
    assert {lower // HOUR_MS for lower, _ in partitions} >= hours
    assert len(hours) == 48


def test_one_endpoint_is_all_dead_and_the_others_a_tenth() -> None:
    events, deliveries = seed_rows("app_x", ENDPOINTS, range(100), 100, 0, 100_000)
    assert len(events) == 100 and len(deliveries) == 1000
    assert all(len(row) == len(EVENT_COLUMNS) for row in events)
    assert all(len(row) == len(DELIVERY_COLUMNS) for row in deliveries)
    dead = [row for row in deliveries if row[4] == DeliveryStatus.DEAD]
    assert sum(1 for row in dead if row[3] == ENDPOINTS[0]) == 100
    assert sum(1 for row in dead if row[3] != ENDPOINTS[0]) == 90
    assert all(ID_PATTERN.fullmatch(row[0]) for row in events + deliveries)
    assert {row[2] for row in deliveries} == {row[0] for row in events}


def test_a_delivery_is_made_at_its_events_millisecond() -> None:
    events, deliveries = seed_rows("app_x", ENDPOINTS[:1], range(3), 3, 7_000, 3_000)
    for event, delivery in zip(events, deliveries, strict=True):
        assert millis_of(delivery[0]) == millis_of(event[0])
        assert delivery[8] == event[5]


def test_a_cursor_continues_before_its_moment() -> None:
    decoded = base64.urlsafe_b64decode(cursor_at(0x123) + "==").decode()
    assert ID_PATTERN.fullmatch(decoded)
    assert decoded.startswith("dlv_000000000123")
    assert decoded < f"dlv_{0x123:012x}{'0' * 19}1"


def test_the_report_gives_each_goal() -> None:
    listing = {"p50": 1.5, "p95": 2.5, "max": 9.0}
    text = report(
        {
            "deliveries_seeded": 10_000_000,
            "seed_seconds": 300.0,
            "partitions": {"interval_seconds": 3600.0, "holding_the_seeded_deliveries": 48},
            "load_average_before_measuring": [1.0, 2.0, 3.0],
            "list_one_endpoint_dead_ms": listing,
            "list_one_endpoint_dead_anywhere_ms": listing,
            "list_app_dead_ms": listing,
            "list_app_dead_anywhere_ms": listing,
            "console_screen_ms": {"dead letters": listing},
            "replay": {
                "matched": 100_000,
                "replayed": 100_000,
                "api_call_seconds": 5.0,
                "until_all_received_seconds": 25.0,
                "sink_received": 100_000,
                "sink_unique": 100_000,
                "workers": 2,
            },
        }
    )
    assert "10,000,000 in 300.0 s" in text
    assert "48 of 60 min" in text
    assert text.count("(goal p95 <= 10 ms)") == 4
    assert "25.0 s, 2 workers (goal <= 30 s)" in text
    assert "console, dead letters: its calls, p50 / p95" in text
    assert "  1.5 / 2.5 ms\n" in text
