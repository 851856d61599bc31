"""The metrics text format and the operational events an attempt's outcome calls for."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from hookrelay.metrics import DeliveryMetrics, render
from hookrelay.models import ClaimedDelivery, RecordedAttempt
from hookrelay.operational import events_after_attempt
from tests.unit.claims import claimed

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def claim(event_type: str = "job.completed", attempt: int = 1) -> ClaimedDelivery:
    return claimed(event_type=event_type, attempt_count=attempt)


def test_attempt_durations_fill_cumulative_buckets() -> None:
    metrics = DeliveryMetrics()
    metrics.attempt("succeeded", 0.004)
    metrics.attempt("retrying", 0.3)
    counts, sums = metrics.take()
    assert counts['hookrelay_attempt_duration_seconds_bucket{le="0.005"}'] == 1
    assert counts['hookrelay_attempt_duration_seconds_bucket{le="0.25"}'] == 1
    assert counts['hookrelay_attempt_duration_seconds_bucket{le="0.5"}'] == 2
    assert counts['hookrelay_attempt_duration_seconds_bucket{le="+Inf"}'] == 2
    assert counts["hookrelay_attempt_duration_seconds_count"] == 2
    assert counts['hookrelay_deliveries_total{outcome="retrying"}'] == 1
    assert sums["hookrelay_attempt_duration_seconds_sum"] == pytest.approx(0.304)
    assert metrics.take() == ({}, {})  # counting starts afresh


def test_render_writes_help_type_and_whole_numbers() -> None:
    text = render({'hookrelay_deliveries_total{outcome="dead"}': 1234567.0}, queue_lag_s=2.5)
    assert "# TYPE hookrelay_deliveries_total counter" in text
    assert 'hookrelay_deliveries_total{outcome="dead"} 1234567\n' in text
    assert "hookrelay_queue_lag_seconds 2.5\n" in text


def test_render_reports_zero_lag_when_nothing_is_due() -> None:
    assert "hookrelay_queue_lag_seconds 0\n" in render({}, queue_lag_s=None)


def test_dead_delivery_reports_delivery_dead() -> None:
    [event] = events_after_attempt(
        claim(attempt=8), RecordedAttempt("dead", None), 500, "the receiver answered 500", NOW
    )
    body = orjson.loads(event.body)
    assert event.type == body["type"] == "delivery.dead"
    assert body["data"]["attempts"] == 8
    assert body["data"]["last_error"] == "the receiver answered 500"
    assert event.app_id == "app_1"


def test_success_after_failures_reports_recovered_but_a_first_success_does_not() -> None:
    [event] = events_after_attempt(
        claim(attempt=3), RecordedAttempt("succeeded", None), 200, None, NOW
    )
    assert event.type == "delivery.recovered"
    assert events_after_attempt(claim(), RecordedAttempt("succeeded", None), 200, None, NOW) == []


def test_disabling_reports_endpoint_disabled_with_the_reason() -> None:
    events = events_after_attempt(
        claim(), RecordedAttempt("dead", "the receiver answered 410 Gone"), 410, "gone", NOW
    )
    assert [e.type for e in events] == ["delivery.dead", "endpoint.disabled"]
    assert orjson.loads(events[1].body)["data"]["reason"] == "the receiver answered 410 Gone"


@pytest.mark.parametrize("event_type", ["delivery.dead", "delivery.recovered", "endpoint.disabled"])
def test_deliveries_of_operational_events_report_nothing(event_type: str) -> None:
    assert (
        events_after_attempt(claim(event_type), RecordedAttempt("dead", "x"), 500, "e", NOW) == []
    )


def test_histogram_buckets_are_rendered_in_the_order_of_their_bounds() -> None:
    name = "hookrelay_attempt_duration_seconds"
    samples = {f'{name}_bucket{{le="{b}"}}': 1.0 for b in ("1", "10", "2.5", "+Inf", "0.005")}
    samples |= {f"{name}_count": 1.0, f"{name}_sum": 0.1}
    lines = [line.split(" ")[0] for line in render(samples, None).splitlines()]
    own = [line for line in lines if line.startswith(name)]
    bounds = [line.split('le="')[1].rstrip('"}') for line in own if "_bucket" in line]
    assert bounds == ["0.005", "1", "2.5", "10", "+Inf"]
    assert own[-2:] == [f"{name}_count", f"{name}_sum"]
